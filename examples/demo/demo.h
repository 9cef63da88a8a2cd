/* gtl-demo: cross-modal few-shot recognition on emoji artwork, end to end, on
 * libgtl's public API. See docs/demo.md.
 *
 * Modules:
 *   demo_data.c     the prepared data set (manifest, splits, sketch twins)
 *   demo_features.c backbone training (or CLIP import), feature extraction
 *                   and caching, raw-pixel features
 *   demo_eval.c     methods (nearest centroid, linear probe, GTL variants)
 *                   on the episodic and all-way protocols
 *   demo_report.c   terminal table, JSON, Markdown, gnuplot figures
 *   gtl_demo.c      command line and the pipeline
 *
 * Shape letters: N images, F feature size, C classes, V augmented views per
 * image. */
#ifndef GTL_DEMO_H
#define GTL_DEMO_H

#include <stdint.h>

#include "ex_util.h"
#include "gtl/backbone.h"
#include "gtl/eval.h"
#include "gtl/gtl.h"

/* ---- data ------------------------------------------------------------------- */

/* Class splits. DEMO_VAL: base classes held out of all training, for
 * choosing the backbone's training levers without looking at novel classes. */
enum { DEMO_BASE = 0, DEMO_NOVEL = 1, DEMO_DROPPED = 2, DEMO_VAL = 3 };

/* The four styles of the prepared data (docs/data.md). */
enum {
    DEMO_STYLE_OPENMOJI_COLOR = 0,
    DEMO_STYLE_FLUENT = 1,
    DEMO_STYLE_NOTO = 2,
    DEMO_STYLE_OPENMOJI_BLACK = 3,
    DEMO_N_STYLES = 4
};

/* What to do with the novel classes whose line art has a near-identical twin. */
typedef enum demo_twins {
    DEMO_TWINS_KEEP_ONE = 0, /* keep the first class of each twin group, drop the others */
    DEMO_TWINS_EXCLUDE = 1,  /* drop every class of a twin group */
    DEMO_TWINS_KEEP = 2      /* keep them all (sketch accuracy is then capped) */
} demo_twins;

typedef struct demo_class {
    char *name;       /* code-point sequence, e.g. "1f600" */
    char *group;      /* OpenMoji group */
    int32_t split;    /* DEMO_BASE, DEMO_NOVEL or DEMO_DROPPED */
    int32_t twin;     /* twin group, -1 when the class has no sketch twin */
} demo_class;

typedef struct demo_image {
    char *path;       /* full path */
    int32_t cls;      /* index into classes */
    int32_t modality; /* GTL_MODALITY_RGB or GTL_MODALITY_SKETCH */
    int32_t style;    /* DEMO_STYLE_* */
} demo_image;

typedef struct demo_data {
    char *dir;               /* the data cache */
    int quick;               /* the cache was prepared with --quick */
    int64_t n_classes;
    demo_class *classes;
    int64_t n_images;
    demo_image *images;      /* manifest order */
    int64_t n_base, n_novel; /* classes per split after the twin policy */
    int64_t n_val;           /* base classes held out for validation */
    int64_t n_twin_classes;  /* novel classes in a twin group */
    int64_t n_twin_dropped;  /* novel classes dropped by the twin policy */
    uint64_t key;            /* hash of manifest.csv + splits.json (cache keys) */
} demo_data;

/* Loads manifest.csv, splits.json and sketch_twins.csv from dir and applies
 * the twin policy. A class subset for --quick is chosen by max_base /
 * max_novel (0 = all); n_val base classes become DEMO_VAL; both choices
 * are by a hash of the class names (stable). Returns 0, or -1 with a message. */
int demo_data_load(const char *dir, demo_twins twins, int64_t max_base, int64_t max_novel,
                   int64_t n_val, demo_data *d);
void demo_data_free(demo_data *d);
const char *demo_style_name(int32_t style);
const char *demo_twins_name(demo_twins t);

#endif /* GTL_DEMO_H */
