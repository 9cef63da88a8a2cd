/* An external consumer of an installed libgtl: prints the build information
 * and checks that header and library versions agree. */
#include <stdio.h>

#include <gtl/gtl.h>

int main(void)
{
    char info[512];
    if (gtl_version_number() != GTL_VERSION_NUMBER) {
        fprintf(stderr, "header %s, library %s\n", GTL_VERSION_STRING, gtl_version_string());
        return 1;
    }
    if (gtl_build_info(info, sizeof info, NULL) != GTL_STATUS_OK) {
        fprintf(stderr, "gtl_build_info: %s\n", gtl_last_error());
        return 1;
    }
    printf("%s\n", info);
    return 0;
}
