import COpenBLAS

// Double-precision linear algebra on row-major [Double] matrices, for statistics that float32
// cannot carry (FID's covariances and their square roots). BLAS and LAPACK stay inside Tensors:
// the layers above call these.

/// op(A) B times `alpha`, row-major: A is [m, k] (or [k, m] with `transA`), B is [k, n]; the
/// result is [m, n] (cblas_dgemm).
public func matmul64(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int, transA: Bool = false, alpha: Double = 1) -> [Double] {
    precondition(a.count == m * k && b.count == k * n, "matmul64: \(a.count) and \(b.count) elements for [\(m), \(k)] x [\(k), \(n)]")
    var c = [Double](repeating: 0, count: m * n)
    if m == 0 || n == 0 || k == 0 { return c }
    cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(transA ? m : k), b, Int32(n), 0, &c, Int32(n))
    return c
}

/// Eigenvalues (ascending) and eigenvectors of a symmetric n x n matrix through LAPACK's dsyev;
/// row k of `vectors` (row-major) is the eigenvector of `values[k]`.
public func symmetricEigen(_ a: [Double], _ n: Int) -> (values: [Double], vectors: [Double]) {
    precondition(a.count == n * n, "symmetricEigen: \(a.count) elements for \(n) x \(n)")
    // LAPACK is column-major; a symmetric matrix is its own transpose, and the eigenvectors come
    // back as the columns of the column-major result, i.e. the rows of `vectors` read row-major.
    var m = a, w = [Double](repeating: 0, count: n)
    var nn = Int32(n), lda = Int32(n), info: Int32 = 0, lwork: Int32 = -1
    var query = 0.0
    "V".withCString { jobz in "U".withCString { uplo in dsyev_(jobz, uplo, &nn, &m, &lda, &w, &query, &lwork, &info) } }
    lwork = Int32(query)
    var work = [Double](repeating: 0, count: Int(lwork))
    "V".withCString { jobz in "U".withCString { uplo in dsyev_(jobz, uplo, &nn, &m, &lda, &w, &work, &lwork, &info) } }
    precondition(info == 0, "dsyev failed (info \(info))")
    return (w, m)
}

/// The symmetric square root of a positive semi-definite n x n matrix (negative eigenvalues from
/// rounding are clamped to zero).
public func symmetricSqrt(_ a: [Double], _ n: Int) -> [Double] {
    let (w, v) = symmetricEigen(a, n)   // v row k = eigenvector k
    var out = [Double](repeating: 0, count: n * n)
    for k in 0..<n {
        let s = max(w[k], 0).squareRoot()
        if s == 0 { continue }
        for i in 0..<n { let vi = v[k * n + i] * s; for j in 0..<n { out[i * n + j] += vi * v[k * n + j] } }
    }
    return out
}
