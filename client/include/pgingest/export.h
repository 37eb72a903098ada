/* Symbol visibility of libpgingest (C and C++ headers). */
#ifndef PGINGEST_EXPORT_H
#define PGINGEST_EXPORT_H
#if defined(__GNUC__)
#define PGINGEST_API __attribute__((visibility("default")))
#else
#define PGINGEST_API
#endif
#endif
