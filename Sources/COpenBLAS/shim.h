#ifndef RINGGAN_COPENBLAS_SHIM_H
#define RINGGAN_COPENBLAS_SHIM_H
// Debian's libopenblas-dev puts cblas.h in the openblas-pthread include folder; pkg-config
// `openblas` adds it to the include path.
#include <cblas.h>
// Declared by OpenBLAS but not by every cblas.h.
char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
// LAPACK (part of libopenblas): symmetric eigen-decomposition, used by FID's matrix square root.
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
#endif
