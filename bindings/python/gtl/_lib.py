"""Low-level ctypes declarations of the libgtl C API.

Every public C function is declared exactly once here, under its C name, with
its argtypes and restype. Nothing in this module checks statuses or owns
handles: that is the job of the classes in ``gtl/__init__.py``. Handles are
plain ``c_void_p`` values; enums cross as ``c_int``.

The library is found, in order:

1. the path in the environment variable ``GTL_LIBRARY`` (an error if it does
   not load: a set variable is never silently ignored);
2. ``libgtl.so*`` next to this file (an installed wheel or a copied library);
3. ``build/libgtl.so`` of the source tree this package sits in
   (``<repo>/bindings/python/gtl`` -> ``<repo>/build``), for developers;
4. ``ctypes.util.find_library("gtl")``, then ``libgtl.so.0`` by the dynamic
   loader's own search (LD_LIBRARY_PATH, ldconfig cache).

At import the major and minor version of the loaded library must equal those
of :data:`BINDINGS_VERSION` (the bindings declare exactly that version's
functions); a mismatch raises ImportError naming both versions.
"""

import ctypes
import ctypes.util
import glob
import os
from ctypes import (CFUNCTYPE, POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_uint8, c_uint32, c_uint64, c_void_p)

#: The C API these bindings were written for, as a GTL_VERSION_NUMBER with patch 0
#: (0.1 -> 100). The loaded library must match it in major and minor version
#: (gtl_version_number() // 100 == BINDINGS_VERSION // 100); any patch is accepted.
BINDINGS_VERSION = 100

# ---- callback types (typedefs of the headers) ----

#: runtime.h gtl_malloc_fn: void *(*)(void *user_data, size_t size)
gtl_malloc_fn = CFUNCTYPE(c_void_p, c_void_p, c_size_t)
#: runtime.h gtl_realloc_fn: void *(*)(void *user_data, void *ptr, size_t size)
gtl_realloc_fn = CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_size_t)
#: runtime.h gtl_free_fn: void (*)(void *user_data, void *ptr)
gtl_free_fn = CFUNCTYPE(None, c_void_p, c_void_p)
#: runtime.h gtl_log_fn: void (*)(void *user_data, gtl_log_level level, const char *message)
gtl_log_fn = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
#: train.h gtl_progress_fn: int (*)(void *ud, gtl_stage, int64_t step, int64_t n_steps,
#: const float *stats)
gtl_progress_fn = CFUNCTYPE(c_int, c_void_p, c_int, c_int64, c_int64, POINTER(c_float))
#: eval.h gtl_eval_fn: gtl_status (*)(void *ud, const gtl_dataset *support,
#: const gtl_dataset *query, int64_t *out_pred)
gtl_eval_fn = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, POINTER(c_int64))
#: eval.h gtl_eval_progress_fn: int (*)(void *ud, int64_t episode, int64_t n_episodes,
#: double accuracy)
gtl_eval_progress_fn = CFUNCTYPE(c_int, c_void_p, c_int64, c_int64, c_double)

_status = c_int          # gtl_status
_enum = c_int            # any other C enum
_handle = c_void_p       # gtl_dataset *, gtl_episode *, gtl_model *, gtl_optimizer *,
#                          gtl_evaluator *, gtl_backbone *
_handle_out = POINTER(c_void_p)
_pf = POINTER(c_float)
_pd = POINTER(c_double)
_pi32 = POINTER(c_int32)
_pi64 = POINTER(c_int64)
_pu64 = POINTER(c_uint64)
_psize = POINTER(c_size_t)

#: name -> (restype, argtypes), one entry per public C function, grouped by header.
FUNCTIONS = {
    # version.h
    "gtl_version_number": (c_uint32, []),
    "gtl_version_string": (c_char_p, []),
    # status.h
    "gtl_strerror": (c_char_p, [_status]),
    "gtl_last_error": (c_char_p, []),
    # runtime.h
    "gtl_set_allocator": (_status, [gtl_malloc_fn, gtl_realloc_fn, gtl_free_fn, c_void_p]),
    "gtl_memory_in_use": (_status, [_pu64, _pu64]),
    "gtl_set_log_callback": (_status, [gtl_log_fn, c_void_p, _enum]),
    "gtl_set_num_threads": (_status, [c_int32]),
    "gtl_num_threads": (_status, [_pi32]),
    "gtl_build_info": (_status, [c_char_p, c_size_t, _psize]),
    "gtl_cpu_has_bf16": (_status, [_pi32]),
    # dataset.h
    "gtl_dataset_create": (_status, [c_int64, _handle_out]),
    "gtl_dataset_destroy": (None, [_handle]),
    "gtl_dataset_add": (_status, [_handle, _pf, c_int64, _pi64, _pi32, _pi64]),
    "gtl_dataset_size": (_status, [_handle, _pi64]),
    "gtl_dataset_feature_dim": (_status, [_handle, _pi64]),
    "gtl_dataset_num_classes": (_status, [_handle, _pi64, _pi64]),
    "gtl_dataset_get": (_status, [_handle, c_int64, _pf, c_size_t, _pi64, _pi32, _pi64]),
    "gtl_dataset_remap_labels": (_status, [_handle, _pi64, c_size_t, _pi64]),
    "gtl_dataset_identity_batch": (_status, [_handle, _pu64, c_int64, c_int64, _pi64, c_size_t,
                                             _pi64]),
    "gtl_episode_create": (_status, [_handle_out]),
    "gtl_episode_destroy": (None, [_handle]),
    "gtl_episode_sample": (_status, [_handle, _handle, c_int64, c_int64, c_int64, c_uint32,
                                     c_uint32, c_uint64]),
    "gtl_episode_support": (_handle, [_handle]),
    "gtl_episode_query": (_handle, [_handle]),
    "gtl_episode_class_label": (_status, [_handle, c_int64, _pi64]),
    "gtl_episode_from_indices": (_status, [_handle, _handle, _pi64, c_int64, _pi64, c_int64,
                                           _pi64, c_int64]),
    "gtl_episode_source_indices": (_status, [_handle, c_int32, _pi64, c_size_t, _pi64]),
    # model.h
    "gtl_model_create": (_status, [_handle_out]),
    "gtl_model_destroy": (None, [_handle]),
    "gtl_model_set_i64": (_status, [_handle, _enum, c_int64]),
    "gtl_model_get_i64": (_status, [_handle, _enum, _pi64]),
    "gtl_model_set_f32": (_status, [_handle, _enum, c_float]),
    "gtl_model_get_f32": (_status, [_handle, _enum, _pf]),
    "gtl_model_param_bounds": (_status, [_enum, _pd, _pd, _pi32]),
    "gtl_model_init": (_status, [_handle]),
    "gtl_model_num_params": (_status, [_handle, _pi64]),
    "gtl_model_predict": (_status, [_handle, _pf, c_int64, c_int64, _pi64, _pf, c_size_t]),
    "gtl_model_latent": (_status, [_handle, _enum, _pf, c_int64, c_int64, _pf, c_size_t]),
    "gtl_model_num_tensors": (_status, [_handle, _pi64]),
    "gtl_model_tensor_info": (_status, [_handle, c_int64, c_char_p, c_size_t, _pi64, _pi32]),
    "gtl_model_tensor_get": (_status, [_handle, c_int64, c_int32, _pf, c_size_t]),
    "gtl_model_tensor_set": (_status, [_handle, c_int64, _pf, c_size_t]),
    "gtl_model_save": (_status, [_handle, _handle, c_char_p]),
    "gtl_model_load": (_status, [c_char_p, _handle_out, _handle_out]),
    "gtl_model_clone": (_status, [_handle, _handle_out]),
    # optim.h
    "gtl_optimizer_create": (_status, [_enum, _handle_out]),
    "gtl_optimizer_destroy": (None, [_handle]),
    "gtl_optimizer_reset": (_status, [_handle]),
    "gtl_optimizer_kind": (_status, [_handle, POINTER(c_int)]),
    "gtl_optimizer_set_f32": (_status, [_handle, _enum, c_float]),
    "gtl_optimizer_get_f32": (_status, [_handle, _enum, _pf]),
    "gtl_optimizer_set_i64": (_status, [_handle, _enum, c_int64]),
    "gtl_optimizer_get_i64": (_status, [_handle, _enum, _pi64]),
    "gtl_optim_param_bounds": (_status, [_enum, _pd, _pd]),
    "gtl_optimizer_set_milestones": (_status, [_handle, _pi64, c_size_t]),
    "gtl_optimizer_get_milestones": (_status, [_handle, _pi64, c_size_t, _psize]),
    "gtl_optimizer_lr_at": (_status, [_handle, c_int64, _pf]),
    "gtl_optimizer_num_steps": (_status, [_handle, _pi64]),
    # train.h
    "gtl_model_set_stage": (_status, [_handle, _enum, c_int64]),
    "gtl_model_forward_backward": (_status, [_handle, _pf, c_int64, c_int64, _pi64, _pf,
                                             c_size_t]),
    "gtl_model_apply": (_status, [_handle, _handle, _pf]),
    "gtl_model_train_step": (_status, [_handle, _handle, _pf, c_int64, c_int64, _pi64, _pf,
                                       c_size_t]),
    "gtl_model_train_stage": (_status, [_handle, _handle, _enum, _handle, c_int64,
                                        gtl_progress_fn, c_void_p]),
    "gtl_adapt": (_status, [_handle, _handle, gtl_progress_fn, c_void_p]),
    # eval.h
    "gtl_eval_nearest_centroid": (_status, [_handle, _handle, c_int32, _pi64, c_size_t, _pf,
                                            c_size_t]),
    "gtl_eval_linear_probe": (_status, [_handle, _handle, c_int64, c_float, _pi64, c_size_t,
                                        _pf, c_size_t]),
    "gtl_eval_accuracy": (_status, [_handle, _pi64, c_int64, _pd, _pd, _pi64, c_size_t]),
    "gtl_eval_mean_ci": (_status, [_pd, c_int64, _pd, _pd, _pi64]),
    "gtl_eval_confusion": (_status, [_handle, _pi64, c_int64, c_int64, _pi64, c_size_t]),
    "gtl_evaluator_create": (_status, [_enum, _handle_out]),
    "gtl_evaluator_destroy": (None, [_handle]),
    "gtl_evaluator_set_i64": (_status, [_handle, _enum, c_int64]),
    "gtl_evaluator_get_i64": (_status, [_handle, _enum, _pi64]),
    "gtl_evaluator_set_f32": (_status, [_handle, _enum, c_float]),
    "gtl_evaluator_get_f32": (_status, [_handle, _enum, _pf]),
    "gtl_evaluator_set_callback": (_status, [_handle, gtl_eval_fn, c_void_p]),
    "gtl_evaluator_set_model": (_status, [_handle, _handle]),
    "gtl_evaluator_set_progress": (_status, [_handle, gtl_eval_progress_fn, c_void_p]),
    "gtl_evaluator_run_episodic": (_status, [_handle, _handle]),
    "gtl_evaluator_run_all_way": (_status, [_handle, _handle]),
    "gtl_evaluator_run_episode_list": (_status, [_handle, _handle, _pi64, c_size_t]),
    "gtl_evaluator_result": (_status, [_handle, c_int32, _pd, _pd, _pi64]),
    "gtl_evaluator_accuracies": (_status, [_handle, c_int32, _pd, c_size_t, _pi64]),
    "gtl_evaluator_episode_list": (_status, [_handle, _pi64, c_size_t, _psize]),
    "gtl_evaluator_report": (_status, [_handle, _enum, c_uint32, c_char_p, c_size_t, _psize]),
    "gtl_evaluator_write_file": (_status, [_handle, _enum, c_uint32, c_char_p]),
    # backbone.h
    "gtl_backbone_create": (_status, [_enum, _handle_out]),
    "gtl_backbone_load": (_status, [c_char_p, _handle_out]),
    "gtl_backbone_save": (_status, [_handle, c_char_p]),
    "gtl_backbone_destroy": (None, [_handle]),
    "gtl_backbone_set_i64": (_status, [_handle, _enum, c_int64]),
    "gtl_backbone_get_i64": (_status, [_handle, _enum, _pi64]),
    "gtl_backbone_set_f32": (_status, [_handle, _enum, c_float]),
    "gtl_backbone_get_f32": (_status, [_handle, _enum, _pf]),
    "gtl_backbone_embed": (_status, [_handle, _pf, c_int64, _pf, c_size_t]),
    "gtl_backbone_embed_files": (_status, [_handle, POINTER(c_char_p), c_int64, _pf, c_size_t,
                                           POINTER(_status)]),
    "gtl_backbone_set_cache_dir": (_status, [_handle, c_char_p]),
    "gtl_backbone_train_step": (_status, [_handle, _handle, _pf, c_int64, _pi64, _pf, c_size_t]),
    "gtl_image_load": (_status, [c_char_p, c_int32, _pf, c_size_t]),
    "gtl_image_preprocess": (_status, [POINTER(c_uint8), c_int32, c_int32, c_int32, c_int32, _pf,
                                       c_size_t]),
    "gtl_image_augment": (_status, [c_char_p, c_uint32, _pu64, c_int32, _pf, c_size_t]),
}


def _candidates():
    """Library paths to try, in order (see the module docstring)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = sorted(glob.glob(os.path.join(here, "libgtl.so*")), key=len)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    out.append(os.path.join(repo, "build", "libgtl.so"))
    found = ctypes.util.find_library("gtl")
    if found:
        out.append(found)
    out.append("libgtl.so.0")
    return out


def _load():
    env = os.environ.get("GTL_LIBRARY")
    if env:
        try:
            return ctypes.CDLL(env), env
        except OSError as e:
            raise ImportError(f"gtl: GTL_LIBRARY={env!r} could not be loaded: {e}") from e
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(f"{path} (missing)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("gtl: libgtl.so not found; build it (cmake --build build) or set "
                      "GTL_LIBRARY. Tried: " + "; ".join(tried))


lib, path = _load()


def _declare(name):
    restype, argtypes = FUNCTIONS[name]
    try:
        f = getattr(lib, name)
    except AttributeError:
        raise ImportError(f"gtl: {path} does not export {name}") from None
    f.restype = restype
    f.argtypes = argtypes
    globals()[name] = f
    return f


_version_number = _declare("gtl_version_number")
_version_string = _declare("gtl_version_string")
#: the loaded library's version as major * 10000 + minor * 100 + patch.
library_version = int(_version_number())
if library_version // 100 != BINDINGS_VERSION // 100:
    raise ImportError(
        f"gtl: the library at {path} is version {_version_string().decode()} "
        f"(GTL_VERSION_NUMBER {library_version}); these bindings are for "
        f"{BINDINGS_VERSION // 10000}.{BINDINGS_VERSION // 100 % 100}.x "
        f"(GTL_VERSION_NUMBER {BINDINGS_VERSION}..{BINDINGS_VERSION + 99})")
for _name in FUNCTIONS:
    if _name not in ("gtl_version_number", "gtl_version_string"):
        _declare(_name)
del _name
