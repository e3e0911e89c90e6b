#ifndef RINGGAN_CZLIB_SHIM_H
#define RINGGAN_CZLIB_SHIM_H
#include <zlib.h>
#endif
