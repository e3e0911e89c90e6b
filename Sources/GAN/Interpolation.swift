import Foundation

/// Linear interpolation `(1 - t) a + t b`, as the tutorial's `interpolate_latent`.
public func lerp(_ a: [Float], _ b: [Float], _ t: Float) -> [Float] {
    precondition(a.count == b.count, "lerp: vectors of \(a.count) and \(b.count) elements")
    return zip(a, b).map { (1 - t) * $0 + t * $1 }
}

/// Spherical interpolation as the tutorial's `slerp` (on the whole vector): with omega the angle
/// between a and b, `sin((1 - t) omega) / sin(omega) a + sin(t omega) / sin(omega) b`. Where the
/// vectors are (nearly) parallel, sin(omega) vanishes and the formula is 0/0: there it falls back
/// to `lerp` (which it approaches as omega -> 0). Computed in double precision.
public func slerp(_ a: [Float], _ b: [Float], _ t: Float) -> [Float] {
    precondition(a.count == b.count, "slerp: vectors of \(a.count) and \(b.count) elements")
    var dotp = 0.0, na = 0.0, nb = 0.0
    for (x, y) in zip(a, b) { dotp += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
    let denom = (na * nb).squareRoot()
    guard denom > 0 else { return lerp(a, b, t) }
    let omega = Foundation.acos(min(max(dotp / denom, -1), 1))
    let s = Foundation.sin(omega)
    if s < 1e-6 { return lerp(a, b, t) }
    let td = Double(t)
    let ca = Foundation.sin((1 - td) * omega) / s, cb = Foundation.sin(td * omega) / s
    return zip(a, b).map { Float(ca * Double($0) + cb * Double($1)) }
}
