#ifndef RINGGAN_CZSTD_SHIM_H
#define RINGGAN_CZSTD_SHIM_H
#include <zstd.h>
#endif
