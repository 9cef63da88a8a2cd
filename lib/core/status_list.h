/* The one list of status codes: X(NAME, value, "message").
 * Generates gtl_strerror() and, through a static check, keeps the public enum
 * in include/gtl/status.h in step with it. Append only. */
#define GTL__STATUS_LIST(X)                                   \
    X(OK, 0, "ok")                                            \
    X(INVALID_ARG, 1, "invalid argument")                     \
    X(OUT_OF_MEMORY, 2, "out of memory")                      \
    X(BAD_STATE, 3, "call not valid in the current state")    \
    X(IO, 4, "input/output error")                            \
    X(FORMAT, 5, "bad or corrupt format")                     \
    X(BACKEND, 6, "compute backend error")                    \
    X(UNSUPPORTED, 7, "unsupported")                          \
    X(NUMERIC, 8, "numeric error (NaN or infinity)")          \
    X(CANCELLED, 9, "cancelled")                              \
    X(INTERNAL, 10, "internal error")
