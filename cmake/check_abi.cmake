# check_abi.cmake: checks the ABI of a built libgtl shared library.
#
#  1. its SONAME is ${SONAME} (default libgtl.so.0), read with `readelf -d`;
#  2. every exported symbol starts with gtl_ (the symbols that
#     `nm -D --defined-only` lists with type T, W, D, B or R; the version node
#     GTL_0, type A, is not a symbol; any other type is reported);
#  3. the sorted list equals the committed snapshot ${SNAPSHOT}
#     (lib/abi/gtl-<version>.symbols, one name per line, '#' comments allowed);
#  4. when API_TEST is given, every exported symbol appears in that source file
#     (test/abi/test_public_api.c must call every public function).
#
# Run by ctest (test abi_symbols), or by hand:
#   cmake -DLIB=build/libgtl.so -DSNAPSHOT=lib/abi/gtl-0.1.0.symbols \
#         -P cmake/check_abi.cmake
# Deliberate snapshot update (checks 1, 2 and 4 still apply):
#   cmake -DLIB=build/libgtl.so -DSNAPSHOT=lib/abi/gtl-0.1.0.symbols -DUPDATE=ON \
#         -P cmake/check_abi.cmake
# Optional: -DNM=<nm>, -DREADELF=<readelf>, -DSONAME=<expected>, -DAPI_TEST=<file>.
cmake_minimum_required(VERSION 3.25)

if(NOT LIB OR NOT EXISTS "${LIB}")
  message(FATAL_ERROR "check_abi: LIB='${LIB}' is not a file (pass -DLIB=<path to libgtl.so>)")
endif()
if(NOT SNAPSHOT)
  message(FATAL_ERROR "check_abi: pass -DSNAPSHOT=<path to lib/abi/gtl-<version>.symbols>")
endif()
if(NOT NM)
  set(NM nm)
endif()
if(NOT READELF)
  set(READELF readelf)
endif()
if(NOT SONAME)
  set(SONAME libgtl.so.0)
endif()

set(errors "")

# ---- 1. SONAME ----
execute_process(COMMAND ${READELF} -d "${LIB}"
  OUTPUT_VARIABLE dyn ERROR_VARIABLE dyn_err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "check_abi: ${READELF} -d ${LIB} failed (${rc}): ${dyn_err}")
endif()
if(dyn MATCHES "Library soname: \\[([^]]*)\\]")
  set(soname "${CMAKE_MATCH_1}")
  if(NOT soname STREQUAL SONAME)
    string(APPEND errors "SONAME is ${soname}, expected ${SONAME}\n")
  endif()
else()
  string(APPEND errors "no SONAME in ${LIB}, expected ${SONAME}\n")
endif()

# ---- 2. exported symbols ----
execute_process(COMMAND ${NM} -D --defined-only "${LIB}"
  OUTPUT_VARIABLE nm_out ERROR_VARIABLE nm_err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "check_abi: ${NM} -D --defined-only ${LIB} failed (${rc}): ${nm_err}")
endif()
string(REPLACE "\n" ";" nm_lines "${nm_out}")
set(built "")
foreach(line IN LISTS nm_lines)
  if(line STREQUAL "")
    continue()
  endif()
  # "<address> <type> <name>[@@<version>]"
  if(NOT line MATCHES "^[0-9a-fA-F]*[ \t]+([A-Za-z?])[ \t]+([^ \t@]+)")
    string(APPEND errors "cannot parse nm line: '${line}'\n")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  if(type STREQUAL "A")
    if(NOT name STREQUAL "GTL_0")
      string(APPEND errors "unexpected absolute symbol or version node '${name}'\n")
    endif()
    continue()
  endif()
  if(NOT type MATCHES "^[TWDBR]$")
    string(APPEND errors "exported symbol '${name}' has unexpected type ${type}\n")
    continue()
  endif()
  if(NOT name MATCHES "^gtl_")
    string(APPEND errors "exported symbol '${name}' does not start with gtl_ "
      "(check GTL_API uses and lib/gtl.map)\n")
  endif()
  list(APPEND built "${name}")
endforeach()
list(REMOVE_DUPLICATES built)
list(SORT built)
list(LENGTH built n_built)
if(n_built EQUAL 0)
  string(APPEND errors "no exported symbols found in ${LIB}\n")
endif()

# ---- 4. every symbol exercised by the public API test ----
if(API_TEST)
  file(READ "${API_TEST}" api_src)
  foreach(name IN LISTS built)
    if(NOT api_src MATCHES "[^A-Za-z0-9_]${name}[^A-Za-z0-9_]")
      string(APPEND errors "exported symbol ${name} is not called in ${API_TEST}\n")
    endif()
  endforeach()
endif()

# ---- 3. the snapshot ----
if(UPDATE)
  if(NOT errors STREQUAL "")
    message(NOTICE "check_abi: not updating ${SNAPSHOT}:\n${errors}")
    message(FATAL_ERROR "check_abi: failed (details above)")
  endif()
  list(JOIN built "\n" text)
  file(WRITE "${SNAPSHOT}" "${text}\n")
  message(STATUS "check_abi: wrote ${n_built} symbols to ${SNAPSHOT}")
  return()
endif()

if(NOT EXISTS "${SNAPSHOT}")
  string(APPEND errors "snapshot ${SNAPSHOT} does not exist\n")
  set(snap "")
else()
  file(STRINGS "${SNAPSHOT}" snap_lines)
  set(snap "")
  foreach(line IN LISTS snap_lines)
    string(STRIP "${line}" line)
    if(line STREQUAL "" OR line MATCHES "^#")
      continue()
    endif()
    list(APPEND snap "${line}")
  endforeach()
  list(SORT snap)
endif()

set(added "")
foreach(name IN LISTS built)
  if(NOT name IN_LIST snap)
    list(APPEND added "${name}")
  endif()
endforeach()
set(removed "")
foreach(name IN LISTS snap)
  if(NOT name IN_LIST built)
    list(APPEND removed "${name}")
  endif()
endforeach()

if(added OR removed)
  string(APPEND errors "exported symbols differ from the snapshot ${SNAPSHOT}:\n")
  foreach(name IN LISTS added)
    string(APPEND errors "  added:   ${name}\n")
  endforeach()
  foreach(name IN LISTS removed)
    string(APPEND errors "  removed: ${name}\n")
  endforeach()
  if(removed)
    string(APPEND errors
      "Removing or renaming an exported symbol breaks the ABI promise of "
      "include/gtl/version.h within a major version.\n")
  endif()
  string(APPEND errors
    "If the change is deliberate:\n"
    "  1. update the snapshot:\n"
    "     cmake -DLIB=${LIB} -DSNAPSHOT=${SNAPSHOT} -DUPDATE=ON -P ${CMAKE_CURRENT_LIST_FILE}\n"
    "  2. add an `ABI:` line naming the symbols to CHANGELOG.md;\n"
    "  3. call each new function in test/abi/test_public_api.c;\n"
    "  4. commit the snapshot with the change.\n")
endif()

if(NOT errors STREQUAL "")
  # NOTICE prints the lines as they are; FATAL_ERROR would re-wrap them.
  message(NOTICE "ABI check of ${LIB} failed:\n${errors}")
  message(FATAL_ERROR "check_abi: failed (details above)")
endif()
message(STATUS "check_abi: ${n_built} exported symbols match ${SNAPSHOT}; SONAME ${soname}")
