# The API reference (Doxygen, from include/gtl/*.h only): target `docs` writes
# build/docs/html/index.html. Optional: without doxygen the target is absent
# and the docs_doxygen test is not registered (apt-get install doxygen).
find_program(GTL_DOXYGEN doxygen)
if(GTL_DOXYGEN)
  set(GTL_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs)
  file(MAKE_DIRECTORY ${GTL_DOCS_OUTPUT})
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${GTL_DOCS_OUTPUT}/Doxyfile @ONLY)
  add_custom_target(docs
    COMMAND ${GTL_DOXYGEN} ${GTL_DOCS_OUTPUT}/Doxyfile
    WORKING_DIRECTORY ${GTL_DOCS_OUTPUT}
    COMMENT "Doxygen: the API reference in ${GTL_DOCS_OUTPUT}/html"
    VERBATIM)
else()
  message(STATUS "gtl: no doxygen: the docs target and the docs_doxygen test are not "
                 "available (apt-get install doxygen)")
endif()
