/**
 * @file version.h
 * @brief Library version, and how to check that header and library match.
 *
 * libgtl follows semantic versioning. The ABI promise: within one major
 * version, exported functions are only ever added, never removed or changed,
 * and enum values are append-only. The shared object's SONAME carries the
 * major version (`libgtl.so.0`).
 *
 * Before 1.0.0 the minor version plays the role of the major one for the API
 * (0.x releases may change it, each change listed on an `ABI:` line of
 * CHANGELOG.md); the SONAME still changes only with the major version, so
 * 0.x users should rebuild on each minor release.
 *
 * Usage, to refuse a mismatched library at start-up:
 * @code
 *   if (gtl_version_number() / 100 != GTL_VERSION_NUMBER / 100) {
 *       fprintf(stderr, "libgtl %s does not match headers %s\n",
 *               gtl_version_string(), GTL_VERSION_STRING);
 *       return 1;
 *   }
 * @endcode
 */
#ifndef GTL_VERSION_H
#define GTL_VERSION_H

#include <stdint.h>

#include "gtl/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Major version: incompatible ABI changes. */
#define GTL_VERSION_MAJOR 0
/** Minor version: added functionality. */
#define GTL_VERSION_MINOR 1
/** Patch version: fixes only. */
#define GTL_VERSION_PATCH 0
/** The version as one number: major * 10000 + minor * 100 + patch. */
#define GTL_VERSION_NUMBER \
    (GTL_VERSION_MAJOR * 10000 + GTL_VERSION_MINOR * 100 + GTL_VERSION_PATCH)
/** The version as a string, "major.minor.patch". */
#define GTL_VERSION_STRING "0.1.0"

/**
 * Returns the version of the library that is running, as GTL_VERSION_NUMBER.
 *
 * Compare it with the GTL_VERSION_NUMBER of the headers you compiled against.
 *
 * @return the version number; this call cannot fail.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe from any thread at any time.
 */
GTL_API uint32_t gtl_version_number(void);

/**
 * Returns the version of the library that is running, as "major.minor.patch".
 *
 * @return a static string; never NULL. This call cannot fail.
 *
 * Ownership: the string is static; do not free it.
 * Thread safety: safe from any thread at any time.
 */
GTL_API const char *gtl_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* GTL_VERSION_H */
