/* ex_images: the user's image folders for the adapt and predict examples.
 *
 * A labelled folder has one subfolder per class; inside a class folder the
 * images are either directly there (modality: the default, RGB) or in
 * sub-subfolders named after their modality:
 *
 *   images/cat/rgb/1.jpg  images/cat/sketch/1.png  images/dog/infrared/a.png ...
 *
 * Modality names (case-insensitive): rgb, photo, color, colour -> RGB;
 * sketch, drawing, lineart -> sketch; infrared, ir, thermal -> infrared;
 * depth -> depth. A CSV manifest (header: path,class[,modality]; paths
 * relative to the CSV's folder) may be used instead of the layout.
 *
 * Files are images by extension (.png, .jpg, .jpeg, .webp, any case); other
 * files are counted and ignored. Images that cannot be decoded are reported
 * by name with the reason and skipped, never fatal. */
#ifndef EX_IMAGES_H
#define EX_IMAGES_H

#include "ex_util.h"
#include "gtl/backbone.h"

typedef struct ex_item {
    char *path;
    int64_t label;    /* class index (classes sorted by name) */
    int32_t modality; /* gtl_modality */
} ex_item;

typedef struct ex_itemset {
    int64_t n;
    ex_item *items;
    int64_t n_classes;
    char **classes;   /* class names, sorted */
    int64_t n_ignored; /* non-image files */
} ex_itemset;

/* Modality from a folder or manifest name; -1 if unknown. */
int32_t ex_modality_from_name(const char *name);
const char *ex_modality_name(int32_t modality);
int ex_is_image_name(const char *name);

/* Reads a labelled folder / a manifest. 0, or -1 with a message. */
int ex_scan_folder(const char *dir, ex_itemset *out);
int ex_scan_manifest(const char *csv_path, ex_itemset *out);
void ex_itemset_free(ex_itemset *s);

/* Every image file under the given paths (files or folders, recursively),
 * in a stable order. */
int ex_collect_files(char *const *paths, int64_t n_paths, char ***out_files, int64_t *out_n,
                     int64_t *out_ignored);

/* Embeds n files with the backbone. out_feat (n, F); ok[i] = 1 when file i
 * was used; a file that fails is reported on stderr ("skipped PATH: reason")
 * and gets ok[i] = 0. With n_views > 0, also writes n_views augmented views
 * of each file to out_views (n, n_views, F) (flags by modality via
 * modalities[i]; NULL: RGB), seeded by seed. Returns the number of files used. */
int64_t ex_embed_files(gtl_backbone *bb, char *const *paths, const int32_t *modalities,
                       int64_t n, float *out_feat, int32_t *ok, int64_t n_views,
                       float *out_views, uint64_t seed);

#endif /* EX_IMAGES_H */
