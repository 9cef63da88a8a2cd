/**
 * @file export.h
 * @brief Symbol visibility and deprecation macros for the libgtl public API.
 *
 * libgtl is built with hidden visibility and a linker version script
 * (`lib/gtl.map`): only functions marked ::GTL_API are exported from
 * `libgtl.so`, and only names that start with `gtl_` are ever marked.
 *
 * A consumer never defines `GTL_BUILDING_LIBRARY`; the library's own build does.
 */
#ifndef GTL_EXPORT_H
#define GTL_EXPORT_H

/** Marks a function as part of the exported, ABI-stable interface. */
#if defined(_WIN32)
#  if defined(GTL_BUILDING_LIBRARY)
#    define GTL_API __declspec(dllexport)
#  else
#    define GTL_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define GTL_API __attribute__((visibility("default")))
#else
#  define GTL_API
#endif

/**
 * Marks a function that will be removed in the next major version.
 * The message names the replacement. Deprecated functions stay for one full
 * major version.
 */
#if defined(__GNUC__) || defined(__clang__)
#  define GTL_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#  define GTL_DEPRECATED(msg)
#endif

#endif /* GTL_EXPORT_H */
