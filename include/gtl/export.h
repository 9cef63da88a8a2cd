/**
 * @file export.h
 * @brief Symbol visibility and deprecation macros for the libgtl public API.
 *
 * libgtl is built with hidden visibility and a linker version script
 * (`lib/gtl.map`): only functions marked ::GTL_API are exported from
 * `libgtl.so`, and only names that start with `gtl_` are ever marked.
 *
 * A consumer never defines `GTL_BUILDING_LIBRARY`; the library's own build does.
 *
 * What this means for a consumer:
 *  - only the functions declared in the headers under include/gtl/ exist in
 *    the shared object; internal helpers (`gtl__*`) are hidden and cannot be
 *    linked against, so an application cannot come to depend on them;
 *  - the set of exported symbols is recorded in lib/abi/gtl-0.1.0.symbols and
 *    checked by the test suite, so a symbol cannot disappear unnoticed;
 *  - a function marked ::GTL_DEPRECATED still works for the rest of the major
 *    version; the compiler's warning names its replacement.
 *
 * Nothing in this header needs to be included directly: gtl/gtl.h includes
 * it, as does every other public header.
 */
#ifndef GTL_EXPORT_H
#define GTL_EXPORT_H

/**
 * @def GTL_API
 * Marks a function as part of the exported, ABI-stable interface: default
 * visibility with GCC and Clang (the library is otherwise built with hidden
 * visibility), dllexport / dllimport on Windows, nothing elsewhere.
 */
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
 * @def GTL_DEPRECATED
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
