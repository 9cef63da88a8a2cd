"""libgtl for Python: cross-modal few-shot learning (GTL) over ctypes.

A thin, Pythonic layer over the C API in ``include/gtl/*.h`` (declared one to
one in :mod:`gtl._lib`). numpy arrays go in and come out: features are
float32 C-contiguous ``(n, F)`` (converted with ``np.ascontiguousarray``, which
copies only when needed), labels int64, modalities int32.

Every failing C call raises a :class:`GtlError` subclass carrying the
:class:`Status` and the library's message (``gtl_last_error()``)::

    import numpy as np, gtl
    with gtl.Model(feature_dim=32, hidden_dim=16) as m, gtl.Optimizer() as opt:
        m.set_stage(gtl.Stage.B1)
        stats = m.train_step(opt, np.random.rand(8, 32))
        labels, probs = m.predict(np.random.rand(4, 32))

See docs/python.md for the class map, errors, threads and memory.
"""

import enum
import os
import signal
import threading
from ctypes import byref, c_char_p, c_int, c_double, c_float, c_int32, c_int64, c_size_t, \
    c_uint8, c_uint64, c_void_p, create_string_buffer, POINTER

import numpy as np

from . import _lib

__all__ = [
    "Status", "GtlError", "InvalidArgument", "OutOfMemory", "BadState", "GtlIOError",
    "FormatError", "BackendError", "Unsupported", "NumericError", "Cancelled", "InternalError",
    "Modality", "ModelParam", "OptimKind", "OptimParam", "Stage", "Stat", "Latent", "LogLevel",
    "BackbonePreset", "BackboneParam", "BackboneLoss", "Augment",
    "STAT_COUNT", "MODALITY_ALL", "NO_PAIR", "OPTIM_MAX_MILESTONES", "modality_mask",
    "Dataset", "Episode", "Optimizer", "Model", "Backbone",
    "image_load", "image_preprocess", "image_augment",
    "version", "version_number", "build_info", "set_num_threads", "num_threads",
    "cpu_has_bf16", "memory_in_use", "set_log_callback", "strerror", "last_error",
]

#: Version of these bindings (they bind the C API of libgtl 0.1).
__version__ = "0.1.0"

# ---------------------------------------------------------------------------
# Enums (values mirror the C headers; they are append-only there)
# ---------------------------------------------------------------------------


class Status(enum.IntEnum):
    """gtl_status (status.h)."""
    OK = 0
    INVALID_ARG = 1
    OUT_OF_MEMORY = 2
    BAD_STATE = 3
    IO = 4
    FORMAT = 5
    BACKEND = 6
    UNSUPPORTED = 7
    NUMERIC = 8
    CANCELLED = 9
    INTERNAL = 10


class Modality(enum.IntEnum):
    """gtl_modality (dataset.h). Host modalities use USER .. 31."""
    RGB = 0
    SKETCH = 1
    INFRARED = 2
    DEPTH = 3
    USER = 16


class ModelParam(enum.IntEnum):
    """gtl_model_param (model.h); the type of each is given by Model.bounds()."""
    FEATURE_DIM = 0
    HIDDEN_DIM = 1
    CONCEPT_DIM = 2
    DISTURBANCE_DIM = 3
    NUM_DOMAINS = 4
    NUM_CLASSES = 5
    ESTIMATOR = 6
    SEED = 7
    DROPOUT = 8
    BETA = 9
    CAPACITY_MAX = 10
    CAPACITY_ITERS = 11
    CAPACITY_RATE_BASE = 12
    CAPACITY_RATE_NOVEL = 13
    TRIPLET_MARGIN = 14
    CE_WEIGHT = 15
    TRIPLET_WEIGHT = 16
    CENTER_WEIGHT = 17
    CENTER_LR = 18
    FREEZE_GENERATOR = 19
    BATCH_CLASSES = 20
    BATCH_SAMPLES = 21
    N1_EPOCHS = 22
    N2_EPOCHS = 23
    N1_LR = 24
    N2_LR = 25
    WEIGHT_DECAY = 26
    WARMUP_EPOCHS = 27
    CLIP_NORM = 28
    CLS_USE_MEAN = 29
    CAPACITY_START_NOVEL = 30
    REP_CLS_WEIGHT = 31


class Latent(enum.IntEnum):
    """gtl_latent (model.h): what Model.latent() returns."""
    CONCEPT = 0
    DISTURBANCE = 1
    GATE = 2


class OptimKind(enum.IntEnum):
    """gtl_optim_kind (optim.h)."""
    ADAM = 0
    ADAMW = 1
    SGD = 2


class OptimParam(enum.IntEnum):
    """gtl_optim_param (optim.h). NESTEROV and WARMUP_STEPS are integers, the rest floats."""
    LR = 0
    BETA1 = 1
    BETA2 = 2
    EPS = 3
    WEIGHT_DECAY = 4
    MOMENTUM = 5
    NESTEROV = 6
    CLIP_NORM = 7
    WARMUP_STEPS = 8
    WARMUP_START_FACTOR = 9
    DECAY_GAMMA = 10


class Stage(enum.IntEnum):
    """gtl_stage (train.h)."""
    B1 = 0
    B2 = 1
    N1 = 2
    N2 = 3


class Stat(enum.IntEnum):
    """gtl_stat (train.h): keys of the statistics dicts (lower-case names)."""
    LOSS = 0
    MSE = 1
    KL = 2
    CAPACITY = 3
    CE = 4
    TRIPLET = 5
    CENTER = 6
    ACCURACY = 7
    GRAD_NORM = 8
    LR = 9


class BackbonePreset(enum.IntEnum):
    """gtl_backbone_preset (backbone.h)."""
    CLIP_VIT_B16 = 0
    CLIP_VIT_B32 = 1
    VIT_TINY = 2
    RESNET_SMALL = 3


class BackboneParam(enum.IntEnum):
    """gtl_backbone_param (backbone.h). TEMPERATURE and SUPCON_WEIGHT are floats, the others
    integers; IMAGE_SIZE and FEATURE_DIM are read-only."""
    IMAGE_SIZE = 0
    FEATURE_DIM = 1
    FEATURE_PARTS = 2
    BF16 = 3
    SEED = 4
    TRAINABLE_BLOCKS = 5
    NUM_CLASSES = 6
    BATCH_SIZE = 7
    LOSS = 8
    TEMPERATURE = 9
    SUPCON_WEIGHT = 10


_BACKBONE_F32 = (BackboneParam.TEMPERATURE, BackboneParam.SUPCON_WEIGHT)


class BackboneLoss(enum.IntEnum):
    """gtl_backbone_loss (backbone.h): the loss of Backbone.train_step()."""
    CE = 0
    SUPCON = 1
    CE_SUPCON = 2


class Augment(enum.IntFlag):
    """gtl_augment (backbone.h): augmentation flags for image_augment()."""
    NONE = 0
    RESIZED_CROP = 1 << 0
    FLIP = 1 << 1
    COLOR = 1 << 2
    STROKE = 1 << 3
    EDGES = 1 << 4
    GRAY = 1 << 5


class LogLevel(enum.IntEnum):
    """gtl_log_level (runtime.h)."""
    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


#: GTL_STAT_COUNT: statistics a step fills.
STAT_COUNT = 10
#: GTL_MODALITY_ALL: a mask selecting every modality.
MODALITY_ALL = 0xFFFFFFFF
#: GTL_NO_PAIR: the pair id of a sample related to no other.
NO_PAIR = -1
#: GTL_OPTIM_MAX_MILESTONES: the most decay milestones an optimizer holds.
OPTIM_MAX_MILESTONES = 64

_OPTIM_INT_KEYS = frozenset({OptimParam.NESTEROV, OptimParam.WARMUP_STEPS})

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class GtlError(Exception):
    """A libgtl call failed.

    Attributes:
        status: the :class:`Status` of the failure.
        message: the library's one-sentence explanation (``gtl_last_error()``),
            or the bindings' own when they rejected the call before reaching C.
    """

    _status = Status.INTERNAL

    def __init__(self, message, status=None):
        st = self._status if status is None else status
        try:
            st = Status(st)
        except ValueError:
            pass
        self.status = st
        self.message = message
        super().__init__(message)

    def __str__(self):
        return f"{strerror(self.status)}: {self.message}"


class InvalidArgument(GtlError, ValueError):
    """GTL_STATUS_INVALID_ARG: a bad argument, shape, label or a NaN in the data."""
    _status = Status.INVALID_ARG


class OutOfMemory(GtlError, MemoryError):
    """GTL_STATUS_OUT_OF_MEMORY."""
    _status = Status.OUT_OF_MEMORY


class BadState(GtlError, RuntimeError):
    """GTL_STATUS_BAD_STATE: the call is not valid in the object's current state."""
    _status = Status.BAD_STATE


class GtlIOError(GtlError):
    """GTL_STATUS_IO: a file could not be opened, read or written."""
    _status = Status.IO


class FormatError(GtlError, ValueError):
    """GTL_STATUS_FORMAT: a file or buffer is corrupt or not in the expected format."""
    _status = Status.FORMAT


class BackendError(GtlError, RuntimeError):
    """GTL_STATUS_BACKEND: oneDNN reported an error."""
    _status = Status.BACKEND


class Unsupported(GtlError):
    """GTL_STATUS_UNSUPPORTED: valid but not supported by this build or CPU."""
    _status = Status.UNSUPPORTED


class NumericError(GtlError, ArithmeticError):
    """GTL_STATUS_NUMERIC: a NaN or infinite loss or gradient; nothing was changed."""
    _status = Status.NUMERIC


class Cancelled(GtlError):
    """GTL_STATUS_CANCELLED: a progress callback asked to stop; the model is consistent."""
    _status = Status.CANCELLED


class InternalError(GtlError, RuntimeError):
    """GTL_STATUS_INTERNAL: a bug in libgtl."""
    _status = Status.INTERNAL


_ERRORS = {cls._status: cls for cls in (InvalidArgument, OutOfMemory, BadState, GtlIOError,
                                        FormatError, BackendError, Unsupported, NumericError,
                                        Cancelled, InternalError)}


def _error(status, message):
    return _ERRORS.get(status, GtlError)(message, status)


def _check(status):
    """Raises the GtlError for a non-zero status, with this thread's gtl_last_error()."""
    if status != 0:
        raise _error(status, _lib.gtl_last_error().decode("utf-8", "replace"))


def strerror(status):
    """The name of a status, e.g. "invalid argument"."""
    return _lib.gtl_strerror(int(status)).decode()


def last_error():
    """gtl_last_error() of this thread (empty after a successful call)."""
    return _lib.gtl_last_error().decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Array helpers: checks the C side cannot do (it trusts the lengths it is given)
# ---------------------------------------------------------------------------

_pf = POINTER(c_float)
_pi32 = POINTER(c_int32)
_pi64 = POINTER(c_int64)


def _features(x, where):
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise InvalidArgument(f"{where}: features must be (n, feature_dim), got shape "
                              f"{a.shape}")
    return a


def _ints(x, n, dtype, where, what):
    a = np.asarray(x)
    if a.size and a.dtype.kind not in "iu":
        raise InvalidArgument(f"{where}: {what} must be integers (got dtype {a.dtype})")
    a = np.ascontiguousarray(a, dtype=dtype).reshape(-1)
    if a.shape[0] != n:
        raise InvalidArgument(f"{where}: {len(a)} {what} for {n} rows")
    return a


def _int_array(x, where, what):
    """A 1-D int64 array of any length (integer dtype required)."""
    a = np.asarray(x)
    if a.size and a.dtype.kind not in "iu":
        raise InvalidArgument(f"{where}: {what} must be integers (got dtype {a.dtype})")
    return np.ascontiguousarray(a, dtype=np.int64).reshape(-1)


def _ptr(a, ptype):
    return None if a is None else a.ctypes.data_as(ptype)


def modality_mask(*modalities):
    """A modality mask from Modality values (or ints 0..31), e.g. modality_mask(RGB, SKETCH)."""
    mask = 0
    for m in modalities:
        if isinstance(m, (list, tuple, set, frozenset)):
            mask |= modality_mask(*m)
            continue
        m = int(m)
        if not 0 <= m <= 31:
            raise InvalidArgument(f"modality_mask: modality {m} is outside 0..31")
        mask |= 1 << m
    return mask


def _mask(spec):
    """A mask argument: a Modality or an iterable of them, or a plain int mask."""
    if isinstance(spec, Modality):
        return 1 << int(spec)
    if isinstance(spec, (list, tuple, set, frozenset)):
        return modality_mask(*spec)
    return int(spec) & 0xFFFFFFFF


class _Guard:
    """Serialises calls on one C handle across threads (the C objects allow one
    thread at a time) and turns a re-entrant call from a progress callback on
    the same thread into BadState instead of corrupting the object."""

    def __init__(self, what):
        self._lock = threading.Lock()
        self._owner = None
        self._what = what

    def __enter__(self):
        if self._owner == threading.get_ident():
            raise BadState(f"{self._what} is busy in a call on this thread (a progress "
                           "callback may not use the object being trained)")
        self._lock.acquire()
        self._owner = threading.get_ident()
        return self

    def __exit__(self, *exc):
        self._owner = None
        self._lock.release()
        return False


class _Handle:
    """Common life cycle of the handle-owning classes."""

    _destroy = None     # the C destroy function (kept on the class for __del__ at shutdown)
    _h = None

    def close(self):
        """Releases the C object now. Safe to call twice; the object is unusable after."""
        h, self._h = self._h, None
        if h and self._destroy is not None:
            type(self)._destroy(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self):
        return not self._h

    def _handle(self):
        if not self._h:
            raise BadState(f"{type(self).__name__} is closed")
        return self._h


# ---------------------------------------------------------------------------
# Process-wide functions
# ---------------------------------------------------------------------------


def version():
    """The running library's version string, e.g. "0.1.0"."""
    return _lib.gtl_version_string().decode()


def version_number():
    """The running library's version as major * 10000 + minor * 100 + patch."""
    return int(_lib.gtl_version_number())


def build_info():
    """One line on this build and machine (versions, ISA, bf16, threads) for bug reports."""
    buf = create_string_buffer(512)
    n = c_size_t()
    _check(_lib.gtl_build_info(buf, len(buf), byref(n)))
    return buf.value.decode()


def set_num_threads(n):
    """Threads of libgtl's kernels (OpenMP, process-wide for the calling thread's regions)."""
    _check(_lib.gtl_set_num_threads(int(n)))


def num_threads():
    n = c_int32()
    _check(_lib.gtl_num_threads(byref(n)))
    return n.value


def cpu_has_bf16():
    v = c_int32()
    _check(_lib.gtl_cpu_has_bf16(byref(v)))
    return bool(v.value)


def memory_in_use():
    """(bytes, blocks) libgtl currently holds through its allocator."""
    b, n = c_uint64(), c_uint64()
    _check(_lib.gtl_memory_in_use(byref(b), byref(n)))
    return b.value, n.value


_log_state = {"cb": None}


def set_log_callback(fn, max_level=LogLevel.INFO):
    """Routes libgtl's log to ``fn(level: LogLevel, message: str)``; None silences it.

    The callback may run on any thread that is inside libgtl, several at once;
    exceptions it raises are swallowed (the C side cannot take them), and it
    must not call libgtl.
    """
    if fn is None:
        _check(_lib.gtl_set_log_callback(_lib.gtl_log_fn(), None, int(max_level)))
        _log_state["cb"] = None
        return

    def trampoline(_ud, level, message):
        try:
            fn(LogLevel(level), message.decode("utf-8", "replace"))
        except Exception:
            pass

    cb = _lib.gtl_log_fn(trampoline)
    _check(_lib.gtl_set_log_callback(cb, None, int(max_level)))
    _log_state["cb"] = cb       # keep it alive while libgtl holds it


# ---------------------------------------------------------------------------
# Datasets and episodes
# ---------------------------------------------------------------------------


class Dataset(_Handle):
    """A labelled set of feature vectors (gtl_dataset).

    ``Dataset(feature_dim)`` creates an empty, owned dataset; the optional
    arrays are passed to :meth:`add`. The support and query sets of an
    :class:`Episode` are read-only views of this class that the episode owns.
    """

    _destroy = _lib.gtl_dataset_destroy

    def __init__(self, feature_dim, features=None, labels=None, modalities=None,
                 pair_ids=None):
        h = c_void_p()
        _check(_lib.gtl_dataset_create(int(feature_dim), byref(h)))
        self._h = h.value
        self._episode = None
        self._rng = c_uint64(0)
        if features is not None:
            self.add(features, labels, modalities, pair_ids)

    @classmethod
    def _view(cls, ptr, episode):
        self = cls.__new__(cls)
        self._h = ptr
        self._episode = episode
        self._gen = episode._gen
        self._rng = c_uint64(0)
        return self

    def close(self):
        if self._episode is not None:      # a view: the episode frees it
            self._h = None
            self._episode = None
            return
        super().close()

    @property
    def is_view(self):
        """True for the support/query sets of an episode (not owned, read-only)."""
        return self._episode is not None

    def _handle(self):
        ep = self._episode
        if ep is not None and (ep.closed or ep._gen != self._gen):
            raise BadState("this episode view is stale: the episode was sampled again or closed")
        return super()._handle()

    def _writable(self, where):
        if self._episode is not None:
            raise BadState(f"{where}: an episode's support/query set is read-only")
        return self._handle()

    def add(self, features, labels, modalities=None, pair_ids=None):
        """Appends n samples (copied): features (n, F) float32, labels (n,) >= 0,
        modalities (n,) in 0..31 (None: all RGB), pair_ids (n,) >= -1 (None: no pairs).
        Nothing is appended if any value is bad."""
        h = self._writable("Dataset.add")
        x = _features(features, "Dataset.add")
        n = x.shape[0]
        if x.shape[1] != self.feature_dim:
            raise InvalidArgument(f"Dataset.add: features have {x.shape[1]} columns, the "
                                  f"dataset's feature_dim is {self.feature_dim}")
        if labels is None:
            raise InvalidArgument("Dataset.add: labels are required")
        y = _ints(labels, n, np.int64, "Dataset.add", "labels")
        m = None if modalities is None else _ints(modalities, n, np.int32, "Dataset.add",
                                                  "modalities")
        p = None if pair_ids is None else _ints(pair_ids, n, np.int64, "Dataset.add",
                                                "pair_ids")
        _check(_lib.gtl_dataset_add(h, _ptr(x, _pf), n, _ptr(y, _pi64), _ptr(m, _pi32),
                                    _ptr(p, _pi64)))

    def __len__(self):
        n = c_int64()
        _check(_lib.gtl_dataset_size(self._handle(), byref(n)))
        return n.value

    @property
    def feature_dim(self):
        d = c_int64()
        _check(_lib.gtl_dataset_feature_dim(self._handle(), byref(d)))
        return d.value

    def num_classes(self):
        """(distinct labels, largest label + 1)."""
        c, end = c_int64(), c_int64()
        _check(_lib.gtl_dataset_num_classes(self._handle(), byref(c), byref(end)))
        return c.value, end.value

    def get(self, index):
        """Sample ``index`` as (features (F,), label, Modality-or-int, pair_id)."""
        d = self.feature_dim
        x = np.empty(d, np.float32)
        y, m, p = c_int64(), c_int32(), c_int64()
        _check(_lib.gtl_dataset_get(self._handle(), int(index), _ptr(x, _pf), d, byref(y),
                                    byref(m), byref(p)))
        mod = Modality(m.value) if m.value in Modality._value2member_map_ else m.value
        return x, y.value, mod, p.value

    def arrays(self):
        """All samples as (features (n, F) float32, labels int64, modalities int32,
        pair_ids int64), copied out one sample at a time."""
        n, d = len(self), self.feature_dim
        x = np.empty((n, d), np.float32)
        y = np.empty(n, np.int64)
        m = np.empty(n, np.int32)
        p = np.empty(n, np.int64)
        yi, mi, pi = c_int64(), c_int32(), c_int64()
        h = self._handle()
        for i in range(n):
            _check(_lib.gtl_dataset_get(h, i, _ptr(x[i], _pf), d, byref(yi), byref(mi),
                                        byref(pi)))
            y[i], m[i], p[i] = yi.value, mi.value, pi.value
        return x, y, m, p

    def remap_labels(self):
        """Remaps labels to 0..C-1 in increasing order; returns map[new] = old (C,)."""
        h = self._writable("Dataset.remap_labels")
        c, _ = self.num_classes()
        mp = np.zeros(max(c, 1), np.int64)
        nc = c_int64()
        _check(_lib.gtl_dataset_remap_labels(h, _ptr(mp, _pi64), len(mp), byref(nc)))
        return mp[:nc.value].copy()

    def seed(self, seed):
        """Seeds the sampler state of identity_batch()."""
        self._rng.value = int(seed) & 0xFFFFFFFFFFFFFFFF

    def identity_batch(self, p_classes, k_samples):
        """Indices of a P x K identity batch (P classes, K samples each), from this
        dataset's own sampler state (see seed())."""
        cap = max(int(p_classes) * int(k_samples), 1)
        idx = np.empty(cap, np.int64)
        n = c_int64()
        _check(_lib.gtl_dataset_identity_batch(self._handle(), byref(self._rng), int(p_classes),
                                               int(k_samples), _ptr(idx, _pi64), cap, byref(n)))
        return idx[:n.value].copy()

    def __repr__(self):
        if self.closed:
            return "<gtl.Dataset closed>"
        kind = " view" if self.is_view else ""
        try:
            return f"<gtl.Dataset{kind} n={len(self)} feature_dim={self.feature_dim}>"
        except GtlError:
            return f"<gtl.Dataset{kind} stale>"


class Episode(_Handle):
    """An N-way K-shot support set and query set drawn from a dataset (gtl_episode).

    ``support`` and ``query`` are read-only :class:`Dataset` views owned by
    the episode; they go stale (BadState) when it is sampled again or closed.
    """

    _destroy = _lib.gtl_episode_destroy

    def __init__(self):
        h = c_void_p()
        _check(_lib.gtl_episode_create(byref(h)))
        self._h = h.value
        self._gen = 0
        self._n_way = 0

    def sample(self, dataset, n_way, k_shot, q_query=0, support_modalities=Modality.RGB,
               query_modalities=Modality.RGB, seed=0):
        """Draws an episode (replacing the previous one) and returns self.

        The modality arguments are a Modality, an iterable of them, or a plain
        int bit mask (see modality_mask()); support needs a non-empty mask.
        """
        _check(_lib.gtl_episode_sample(self._handle(), dataset._handle(), int(n_way),
                                       int(k_shot), int(q_query), _mask(support_modalities),
                                       _mask(query_modalities),
                                       int(seed) & 0xFFFFFFFFFFFFFFFF))
        self._gen += 1
        self._n_way = int(n_way)
        return self

    def _side(self, fn):
        h = self._handle()
        if self._gen == 0:
            raise BadState("Episode: never sampled")
        return Dataset._view(fn(h), self)

    @property
    def support(self):
        """The support set (labels 0..N-1), a view valid until the next sample()."""
        return self._side(_lib.gtl_episode_support)

    @property
    def query(self):
        """The query set (labels 0..N-1), a view valid until the next sample()."""
        return self._side(_lib.gtl_episode_query)

    def class_label(self, cls):
        """The source-dataset label of episode class ``cls``."""
        v = c_int64()
        _check(_lib.gtl_episode_class_label(self._handle(), int(cls), byref(v)))
        return v.value

    @property
    def class_labels(self):
        """Source labels of the N episode classes, as an int64 array."""
        return np.array([self.class_label(c) for c in range(self._n_way)], np.int64)

    @classmethod
    def from_indices(cls, source, class_labels, support_indices, query_indices=None):
        """A new episode made of explicit rows of ``source`` (gtl_episode_from_indices).

        Support row i is source row ``support_indices[i]``, query row i is
        ``query_indices[i]`` (None or empty: no query set); a row's label becomes
        the position of its source label in ``class_labels``. Feeding back the
        class_labels and source_indices() of an episode rebuilds it row for row.
        """
        labels = _int_array(class_labels, "Episode.from_indices", "class_labels")
        sup = _int_array(support_indices, "Episode.from_indices", "support_indices")
        qry = (np.zeros(0, np.int64) if query_indices is None else
               _int_array(query_indices, "Episode.from_indices", "query_indices"))
        self = cls()
        try:
            self.fill_from_indices(source, labels, sup, qry)
        except BaseException:
            self.close()
            raise
        return self

    def fill_from_indices(self, source, class_labels, support_indices, query_indices=None):
        """Like from_indices(), replacing this episode's contents (views go stale);
        returns self. On failure the episode is unchanged."""
        labels = _int_array(class_labels, "Episode.fill_from_indices", "class_labels")
        sup = _int_array(support_indices, "Episode.fill_from_indices", "support_indices")
        qry = (np.zeros(0, np.int64) if query_indices is None else
               _int_array(query_indices, "Episode.fill_from_indices", "query_indices"))
        _check(_lib.gtl_episode_from_indices(self._handle(), source._handle(),
                                             _ptr(labels, _pi64), labels.size, _ptr(sup, _pi64),
                                             sup.size, _ptr(qry, _pi64) if qry.size else None,
                                             qry.size))
        self._gen += 1
        self._n_way = int(labels.size)
        return self

    def source_indices(self, side="support"):
        """The source rows of the support ("support" or 0) or query ("query" or 1)
        set, in row order, as an int64 array."""
        if isinstance(side, str):
            try:
                side = {"support": 0, "query": 1}[side]
            except KeyError:
                raise InvalidArgument(f"Episode.source_indices: side must be 'support' or "
                                      f"'query' (got {side!r})") from None
        n = c_int64()
        h = self._handle()
        _check(_lib.gtl_episode_source_indices(h, int(side), None, 0, byref(n)))
        out = np.empty(n.value, np.int64)
        if n.value:
            _check(_lib.gtl_episode_source_indices(h, int(side), _ptr(out, _pi64), out.size,
                                                   byref(n)))
        return out


# ---------------------------------------------------------------------------
# Optimizer
# ---------------------------------------------------------------------------


class Optimizer(_Handle):
    """Adam, AdamW or SGD with clipping and a warm-up + multi-step schedule (gtl_optimizer).

    ``Optimizer(OptimKind.ADAM, lr=1e-3, weight_decay=1e-4, warmup_steps=200,
    milestones=[2400])``; every OptimParam is also a property (``opt.lr``).
    """

    _destroy = _lib.gtl_optimizer_destroy

    def __init__(self, kind=OptimKind.ADAM, milestones=None, **settings):
        h = c_void_p()
        _check(_lib.gtl_optimizer_create(int(kind), byref(h)))
        self._h = h.value
        self._kind = OptimKind(kind)
        self._guard = _Guard("Optimizer")
        try:
            for k, v in settings.items():
                self.set(k, v)
            if milestones is not None:
                self.milestones = milestones
        except BaseException:
            self.close()
            raise

    @property
    def kind(self):
        """The OptimKind the optimizer was created (or saved) with."""
        if self._kind is None:
            k = c_int()
            with self._guard:
                _check(_lib.gtl_optimizer_kind(self._handle(), byref(k)))
            self._kind = OptimKind(k.value)
        return self._kind

    @staticmethod
    def _key(key):
        if isinstance(key, str):
            try:
                return OptimParam[key.upper()]
            except KeyError:
                raise InvalidArgument(f"Optimizer: unknown setting {key!r}") from None
        return OptimParam(key)

    @staticmethod
    def bounds(key):
        """The closed range (lo, hi) a setting accepts."""
        lo, hi = c_double(), c_double()
        _check(_lib.gtl_optim_param_bounds(int(Optimizer._key(key)), byref(lo), byref(hi)))
        return lo.value, hi.value

    def set(self, key, value):
        key = self._key(key)
        with self._guard:
            if key in _OPTIM_INT_KEYS:
                _check(_lib.gtl_optimizer_set_i64(self._handle(), key, int(value)))
            else:
                _check(_lib.gtl_optimizer_set_f32(self._handle(), key, float(value)))

    def get(self, key):
        key = self._key(key)
        with self._guard:
            if key in _OPTIM_INT_KEYS:
                v = c_int64()
                _check(_lib.gtl_optimizer_get_i64(self._handle(), key, byref(v)))
            else:
                v = c_float()
                _check(_lib.gtl_optimizer_get_f32(self._handle(), key, byref(v)))
        return v.value

    @property
    def milestones(self):
        """Steps at which the learning rate is multiplied by DECAY_GAMMA (int64 array)."""
        n = c_size_t()
        out = np.zeros(OPTIM_MAX_MILESTONES, np.int64)
        with self._guard:
            _check(_lib.gtl_optimizer_get_milestones(self._handle(), _ptr(out, _pi64), len(out),
                                                     byref(n)))
        return out[:n.value].copy()

    @milestones.setter
    def milestones(self, steps):
        a = np.asarray(steps if steps is not None else [], dtype=None)
        if a.size and a.dtype.kind not in "iu":
            raise InvalidArgument(f"Optimizer.milestones: steps must be integers (got {a.dtype})")
        a = np.ascontiguousarray(a, np.int64).reshape(-1)
        with self._guard:
            _check(_lib.gtl_optimizer_set_milestones(self._handle(),
                                                     _ptr(a, _pi64) if a.size else None,
                                                     a.size))

    def lr_at(self, step):
        """The learning rate the schedule gives to step ``step`` (0 = the first)."""
        v = c_float()
        with self._guard:
            _check(_lib.gtl_optimizer_lr_at(self._handle(), int(step), byref(v)))
        return v.value

    @property
    def num_steps(self):
        """Updates applied since creation or reset()."""
        v = c_int64()
        with self._guard:
            _check(_lib.gtl_optimizer_num_steps(self._handle(), byref(v)))
        return v.value

    def reset(self):
        """Forgets the training state (step count, moments); settings are kept."""
        with self._guard:
            _check(_lib.gtl_optimizer_reset(self._handle()))

    def __repr__(self):
        if self.closed:
            return "<gtl.Optimizer closed>"
        kind = self._kind.name if self._kind is not None else "loaded"
        return f"<gtl.Optimizer {kind} lr={self.lr:g} steps={self.num_steps}>"


def _optim_property(key):
    return property(lambda self: self.get(key), lambda self, v: self.set(key, v),
                    doc=f"OptimParam.{key.name}")


for _k in OptimParam:
    setattr(Optimizer, _k.name.lower(), _optim_property(_k))
del _k


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def _stats_dict(buf):
    return {Stat(i).name.lower(): float(buf[i]) for i in range(STAT_COUNT)}


class _Progress:
    """Adapts a Python progress callable to gtl_progress_fn for one call.

    The callable gets (stage: Stage, step, n_steps, stats: dict) and returns a
    true value to stop. An exception in it cancels the C call (which then
    returns CANCELLED with the model consistent) and is re-raised afterwards.

    Ctrl-C: a KeyboardInterrupt raised by Python's default SIGINT handler
    could surface at the entry of the trampoline, outside any try block, where
    ctypes would only print it. So, on the main thread and while the default
    handler is installed, the call runs under a handler that just records the
    signal; the trampoline (installed even without a callable) then cancels
    at the end of the current step and KeyboardInterrupt is raised afterwards.
    """

    def __init__(self, fn):
        self.fn = fn
        self.exc = None
        self.interrupted = False
        self._old_handler = None
        self.cfn = _lib.gtl_progress_fn(self._call)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
            self._old_handler = None
        return False

    def _on_sigint(self, signum, frame):
        self.interrupted = True

    def _call(self, _ud, stage, step, n_steps, stats):
        try:
            if self.interrupted:
                return 1
            if self.fn is None:
                return 0
            buf = np.ctypeslib.as_array(stats, (STAT_COUNT,)).copy()
            return 1 if self.fn(Stage(stage), int(step), int(n_steps), _stats_dict(buf)) else 0
        except BaseException as e:      # noqa: B902 (KeyboardInterrupt must cancel too)
            self.exc = e
            return 1

    def finish(self, status):
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        if self.interrupted:
            raise KeyboardInterrupt
        _check(status)


class Model(_Handle):
    """The GTL head over backbone features (gtl_model).

    ``Model(feature_dim=512, hidden_dim=256, seed=1)`` sets any ModelParam by
    its lower-case name; each is also a property (``m.beta = 0.5``). Structural
    parameters (dimensions, estimator, seed, dropout) are fixed by init(), which
    the first training or prediction call runs implicitly.
    """

    _destroy = _lib.gtl_model_destroy
    _is_int = {}

    def __init__(self, **params):
        h = c_void_p()
        _check(_lib.gtl_model_create(byref(h)))
        self._h = h.value
        self._guard = _Guard("Model")
        try:
            for k, v in params.items():
                self.set(k, v)
        except BaseException:
            self.close()
            raise

    # ---- parameters ----

    @staticmethod
    def _key(key):
        if isinstance(key, str):
            try:
                return ModelParam[key.upper()]
            except KeyError:
                raise InvalidArgument(f"Model: unknown parameter {key!r}") from None
        return ModelParam(key)

    @staticmethod
    def bounds(key):
        """(lo, hi, is_int) of a parameter."""
        lo, hi, is_int = c_double(), c_double(), c_int32()
        _check(_lib.gtl_model_param_bounds(int(Model._key(key)), byref(lo), byref(hi),
                                           byref(is_int)))
        return lo.value, hi.value, bool(is_int.value)

    @classmethod
    def _int_key(cls, key):
        v = cls._is_int.get(key)
        if v is None:
            v = cls._is_int[key] = cls.bounds(key)[2]
        return v

    def set(self, key, value):
        key = self._key(key)
        with self._guard:
            if self._int_key(key):
                if isinstance(value, float) and not value.is_integer():
                    raise InvalidArgument(f"Model.set: {key.name} is an integer (got {value})")
                _check(_lib.gtl_model_set_i64(self._handle(), key, int(value)))
            else:
                _check(_lib.gtl_model_set_f32(self._handle(), key, float(value)))

    def get(self, key):
        key = self._key(key)
        with self._guard:
            if self._int_key(key):
                v = c_int64()
                _check(_lib.gtl_model_get_i64(self._handle(), key, byref(v)))
            else:
                v = c_float()
                _check(_lib.gtl_model_get_f32(self._handle(), key, byref(v)))
        return v.value

    def params(self):
        """Every parameter as a dict {lower-case name: value}."""
        return {k.name.lower(): self.get(k) for k in ModelParam}

    # ---- life cycle and inspection ----

    def init(self):
        """Allocates and initialises the weights (BadState if already done)."""
        with self._guard:
            _check(_lib.gtl_model_init(self._handle()))
        return self

    @property
    def num_params(self):
        """Trainable values of the initialised model."""
        v = c_int64()
        with self._guard:
            _check(_lib.gtl_model_num_params(self._handle(), byref(v)))
        return v.value

    def predict(self, x):
        """Classifies features (n, F) with the current classifier (evaluation mode).

        Returns (labels int64 (n,), probabilities float32 (n, C)); rows sum to 1.
        """
        a = _features(x, "Model.predict")
        n, d = a.shape
        with self._guard:
            c = c_int64()
            _check(_lib.gtl_model_get_i64(self._handle(), ModelParam.NUM_CLASSES, byref(c)))
            labels = np.empty(n, np.int64)
            probs = np.empty((n, c.value), np.float32)
            _check(_lib.gtl_model_predict(self._handle(), _ptr(a, _pf), n, d,
                                          _ptr(labels, _pi64), _ptr(probs, _pf), probs.size))
        return labels, probs

    def latent(self, x, which=Latent.CONCEPT):
        """Latent codes (evaluation mode): CONCEPT (n, Nc) = mu_c, DISTURBANCE
        (n, Nm) = the fused z~_m, or GATE (n, d)."""
        which = Latent(which)
        a = _features(x, "Model.latent")
        n, d = a.shape
        width_key = {Latent.CONCEPT: ModelParam.CONCEPT_DIM,
                     Latent.DISTURBANCE: ModelParam.DISTURBANCE_DIM,
                     Latent.GATE: ModelParam.NUM_DOMAINS}[which]
        width = self.get(width_key)
        out = np.empty((n, width), np.float32)
        with self._guard:
            _check(_lib.gtl_model_latent(self._handle(), which, _ptr(a, _pf), n, d,
                                         _ptr(out, _pf), out.size))
        return out

    # ---- tensors ----

    @property
    def num_tensors(self):
        v = c_int64()
        with self._guard:
            _check(_lib.gtl_model_num_tensors(self._handle(), byref(v)))
        return v.value

    def tensor_info(self, index):
        """(name, numel, trainable in the current stage) of tensor ``index``."""
        name = create_string_buffer(256)
        numel, trainable = c_int64(), c_int32()
        with self._guard:
            _check(_lib.gtl_model_tensor_info(self._handle(), int(index), name, len(name),
                                              byref(numel), byref(trainable)))
        return name.value.decode(), numel.value, bool(trainable.value)

    @property
    def tensor_names(self):
        """Names of the parameter tensors, in index order (e.g. "encoder.fc.weight")."""
        return [self.tensor_info(i)[0] for i in range(self.num_tensors)]

    def _tensor_index(self, key):
        if isinstance(key, str):
            names = self.tensor_names
            try:
                return names.index(key)
            except ValueError:
                raise InvalidArgument(f"Model: no tensor named {key!r}") from None
        return int(key)

    def get_tensor(self, key, grad=False):
        """Values (or with grad=True the gradient) of a tensor, by name or index,
        as a flat float32 array (a copy)."""
        i = self._tensor_index(key)
        _, numel, _ = self.tensor_info(i)
        out = np.empty(numel, np.float32)
        with self._guard:
            _check(_lib.gtl_model_tensor_get(self._handle(), i, 1 if grad else 0,
                                             _ptr(out, _pf), out.size))
        return out

    def get_grad(self, key):
        """The accumulated gradient of a tensor (zeros when frozen or before backward)."""
        return self.get_tensor(key, grad=True)

    def set_tensor(self, key, values):
        """Overwrites a tensor's values (any shape with numel finite values)."""
        i = self._tensor_index(key)
        a = np.ascontiguousarray(values, np.float32).reshape(-1)
        with self._guard:
            _check(_lib.gtl_model_tensor_set(self._handle(), i, _ptr(a, _pf), a.size))

    def tensors(self, grad=False):
        """All tensors as a dict {name: flat float32 array}."""
        return {self.tensor_info(i)[0]: self.get_tensor(i, grad) for i in range(self.num_tensors)}

    # ---- checkpoints ----

    def save(self, path, optimizer=None):
        """Writes the model (weights, statistics, classifier, RNG, stage) and, if
        given, the optimizer's settings and state to one checkpoint file,
        atomically. BadState while gradients are pending."""
        with self._guard:
            if optimizer is None:
                _check(_lib.gtl_model_save(self._handle(), None, os.fsencode(path)))
                return
            with optimizer._guard:
                _check(_lib.gtl_model_save(self._handle(), optimizer._handle(),
                                           os.fsencode(path)))

    @classmethod
    def load_checkpoint(cls, path):
        """(Model, Optimizer or None) from a file written by save()."""
        hm, ho = c_void_p(), c_void_p()
        _check(_lib.gtl_model_load(os.fsencode(path), byref(hm), byref(ho)))
        model = cls.__new__(cls)
        model._h = hm.value
        model._guard = _Guard("Model")
        opt = None
        if ho.value:
            opt = Optimizer.__new__(Optimizer)
            opt._h = ho.value
            opt._kind = None            # read lazily with gtl_optimizer_kind
            opt._guard = _Guard("Optimizer")
        return model, opt

    @classmethod
    def load(cls, path):
        """A Model from a file written by save() (a saved optimizer is ignored)."""
        hm = c_void_p()
        _check(_lib.gtl_model_load(os.fsencode(path), byref(hm), None))
        model = cls.__new__(cls)
        model._h = hm.value
        model._guard = _Guard("Model")
        return model

    def clone(self):
        """A deep, independent copy (gtl_model_clone): settings, weights, batch-norm
        statistics, classifier, random state and stage. BadState if the model is
        not initialised or has gradients pending."""
        h = c_void_p()
        with self._guard:
            _check(_lib.gtl_model_clone(self._handle(), byref(h)))
        model = Model.__new__(Model)
        model._h = h.value
        model._guard = _Guard("Model")
        return model

    # ---- training ----

    def set_stage(self, stage, n_classes=0):
        """Selects the stage the next steps train; B2/N2 need n_classes >= 1 and get a
        fresh classifier."""
        with self._guard:
            _check(_lib.gtl_model_set_stage(self._handle(), int(Stage(stage)), int(n_classes)))

    def _batch(self, x, labels, where):
        a = _features(x, where)
        y = None if labels is None else _ints(labels, a.shape[0], np.int64, where, "labels")
        return a, y

    def forward_backward(self, x, labels=None):
        """Forward and backward of the current stage on one batch; returns the stats
        dict. Gradients are then pending for apply()."""
        a, y = self._batch(x, labels, "Model.forward_backward")
        stats = np.zeros(STAT_COUNT, np.float32)
        with self._guard:
            _check(_lib.gtl_model_forward_backward(self._handle(), _ptr(a, _pf), a.shape[0],
                                                   a.shape[1], _ptr(y, _pi64),
                                                   _ptr(stats, _pf), STAT_COUNT))
        return _stats_dict(stats)

    def apply(self, optimizer):
        """Applies the pending gradients with ``optimizer``; returns the gradient norm."""
        norm = c_float()
        with self._guard, optimizer._guard:
            _check(_lib.gtl_model_apply(self._handle(), optimizer._handle(), byref(norm)))
        return norm.value

    def train_step(self, optimizer, x, labels=None):
        """forward_backward() + apply(); returns the stats dict (with grad_norm and lr).
        NumericError means the step was skipped and nothing changed."""
        a, y = self._batch(x, labels, "Model.train_step")
        stats = np.zeros(STAT_COUNT, np.float32)
        with self._guard, optimizer._guard:
            _check(_lib.gtl_model_train_step(self._handle(), optimizer._handle(), _ptr(a, _pf),
                                             a.shape[0], a.shape[1], _ptr(y, _pi64),
                                             _ptr(stats, _pf), STAT_COUNT))
        return _stats_dict(stats)

    def train_stage(self, optimizer, stage, dataset, epochs, progress=None):
        """Runs a whole stage over ``dataset`` (labels 0..C-1 for B2/N2).

        ``progress(stage, step, n_steps, stats)`` is called after every step;
        a true return value stops the stage (Cancelled is raised) and an
        exception it raises stops it and is re-raised here. Either way every
        completed step has been applied.
        """
        with _Progress(progress) as p, self._guard, optimizer._guard:
            st = _lib.gtl_model_train_stage(self._handle(), optimizer._handle(),
                                            int(Stage(stage)), dataset._handle(), int(epochs),
                                            p.cfn, None)
        p.finish(st)

    def adapt(self, support, progress=None):
        """Adapts to the support set's C classes (stages N1 then N2 with the model's
        N1/N2 settings); progress as for train_stage()."""
        with _Progress(progress) as p, self._guard:
            st = _lib.gtl_adapt(self._handle(), support._handle(), p.cfn, None)
        p.finish(st)

    def __repr__(self):
        if self.closed:
            return "<gtl.Model closed>"
        return (f"<gtl.Model F={self.feature_dim} H={self.hidden_dim} Nc={self.concept_dim} "
                f"Nm={self.disturbance_dim} d={self.num_domains} C={self.num_classes}>")


def _model_property(key):
    return property(lambda self: self.get(key), lambda self, v: self.set(key, v),
                    doc=f"ModelParam.{key.name}")


for _k in ModelParam:
    setattr(Model, _k.name.lower(), _model_property(_k))
del _k


# ---------------------------------------------------------------------------
# Evaluation (eval.h): baselines, metrics and the protocol runner
# ---------------------------------------------------------------------------


class EvalMethod(enum.IntEnum):
    """gtl_eval_method (eval.h): what an Evaluator runs on each episode."""
    NEAREST_CENTROID = 0
    CENTRED_CENTROID = 1
    LINEAR_PROBE = 2
    CALLBACK = 3
    GTL = 4


class EvalParam(enum.IntEnum):
    """gtl_eval_param (eval.h). PROBE_L2 is a float, the rest integers."""
    N_WAY = 0
    K_SHOT = 1
    Q_QUERY = 2
    EPISODES = 3
    SEED = 4
    SUPPORT_MODALITIES = 5
    QUERY_MODALITIES = 6
    ALL_WAY_REPEATS = 7
    PROBE_ITERS = 8
    PROBE_L2 = 9


class EvalFormat(enum.IntEnum):
    """gtl_eval_format (eval.h): report formats."""
    JSON = 0
    MARKDOWN = 1


#: GTL_EVAL_TOTAL: the modality argument selecting every query sample.
EVAL_TOTAL = -1
#: GTL_EVAL_NUM_MODALITIES: entries of the per-modality arrays (tags 0..31).
EVAL_NUM_MODALITIES = 32
#: GTL_EVAL_REPORT_EPISODES / GTL_EVAL_REPORT_NO_HEADER: report flags.
EVAL_REPORT_EPISODES = 1
EVAL_REPORT_NO_HEADER = 2

_EVAL_FLOAT_KEYS = frozenset({EvalParam.PROBE_L2})
_EVAL_MASK_KEYS = frozenset({EvalParam.SUPPORT_MODALITIES, EvalParam.QUERY_MODALITIES})
_pd = POINTER(c_double)


def _modality_name(m):
    """The name the reports use for modality tag m ("rgb", ..., "modality_16")."""
    return Modality(m).name.lower() if m in Modality._value2member_map_ and m < 4 \
        else f"modality_{m}"


def _modality_arg(modality, where):
    """None or "total" -> EVAL_TOTAL; a Modality / int 0..31 / report name -> its tag."""
    if modality is None or (isinstance(modality, str) and modality == "total"):
        return EVAL_TOTAL
    if isinstance(modality, str):
        for m in range(EVAL_NUM_MODALITIES):
            if _modality_name(m) == modality.lower():
                return m
        raise InvalidArgument(f"{where}: unknown modality {modality!r}")
    return int(modality)


def _query_size(query):
    n = c_int64()
    _check(_lib.gtl_dataset_size(query._handle(), byref(n)))
    return n.value


def _baseline_out(support, query):
    """Output arrays (pred (Q,), scores (Q, C)) for a baseline on these sets."""
    q = _query_size(query)
    c, _ = support.num_classes()
    return np.empty(q, np.int64), np.empty((q, max(c, 0)), np.float32)


def nearest_centroid(support, query, centred=False):
    """Cosine nearest centroid (ProtoNet) of each query row (gtl_eval_nearest_centroid).

    ``centred=True`` subtracts the support mean first ("centred cosine").
    Returns (pred int64 (Q,), scores float32 (Q, C)): predictions are support
    label values; score column j belongs to the j-th smallest support label.
    """
    pred, scores = _baseline_out(support, query)
    _check(_lib.gtl_eval_nearest_centroid(support._handle(), query._handle(),
                                          1 if centred else 0, _ptr(pred, _pi64), pred.size,
                                          _ptr(scores, _pf), scores.size))
    return pred, scores


def linear_probe(support, query, n_iters=100, l2=0.01):
    """Multinomial logistic regression on the L2-normalised support features,
    by L-BFGS (gtl_eval_linear_probe); deterministic.

    Returns (pred int64 (Q,), probs float32 (Q, C)), classes as for nearest_centroid().
    """
    pred, probs = _baseline_out(support, query)
    _check(_lib.gtl_eval_linear_probe(support._handle(), query._handle(), int(n_iters),
                                      float(l2), _ptr(pred, _pi64), pred.size,
                                      _ptr(probs, _pf), probs.size))
    return pred, probs


def accuracy(query, pred):
    """Top-1 accuracy of ``pred`` against the labels of ``query`` (gtl_eval_accuracy).

    Returns (total, per_modality, counts): ``total`` a float in [0, 1];
    ``per_modality`` {Modality or int tag: accuracy} and ``counts`` {tag: query
    samples}, both only for the tags present in ``query``.
    """
    n = _query_size(query)
    p = _ints(pred, n, np.int64, "accuracy", "predictions")
    total = c_double()
    macc = np.empty(EVAL_NUM_MODALITIES, np.float64)
    mcnt = np.empty(EVAL_NUM_MODALITIES, np.int64)
    _check(_lib.gtl_eval_accuracy(query._handle(), _ptr(p, _pi64), n, byref(total),
                                  _ptr(macc, _pd), _ptr(mcnt, _pi64), EVAL_NUM_MODALITIES))
    tags = [m for m in range(EVAL_NUM_MODALITIES) if mcnt[m] > 0]
    key = (lambda m: Modality(m) if m in Modality._value2member_map_ else m)
    return (total.value, {key(m): float(macc[m]) for m in tags},
            {key(m): int(mcnt[m]) for m in tags})


def mean_ci(values):
    """Mean and 95% confidence interval (1.96 * sample std / sqrt(n)) of per-episode
    values, NaN skipped (gtl_eval_mean_ci). Returns (mean, ci95, n_used)."""
    v = np.ascontiguousarray(values, np.float64).reshape(-1)
    mean, ci, n = c_double(), c_double(), c_int64()
    _check(_lib.gtl_eval_mean_ci(_ptr(v, _pd) if v.size else None, v.size, byref(mean),
                                 byref(ci), byref(n)))
    return mean.value, ci.value, n.value


def confusion(query, pred, n_classes=None):
    """Confusion matrix int64 (C, C): [t, p] counts query samples of label t
    predicted as p (gtl_eval_confusion). ``n_classes`` defaults to the largest
    label or prediction + 1."""
    n = _query_size(query)
    p = _ints(pred, n, np.int64, "confusion", "predictions")
    if n_classes is None:
        _, end = query.num_classes()
        n_classes = max(end, int(p.max()) + 1 if p.size else 0, 1)
    n_classes = int(n_classes)
    out = np.zeros((max(n_classes, 0), max(n_classes, 0)), np.int64)
    _check(_lib.gtl_eval_confusion(query._handle(), _ptr(p, _pi64), n, n_classes,
                                   _ptr(out, _pi64), out.size))
    return out


class _CallScope:
    """Marks Dataset views passed to an evaluation callback: they are valid only
    during the call (an Episode-like owner that goes stale afterwards)."""
    _gen = 0
    closed = False


class _EvalHooks:
    """The C trampolines of one Evaluator (method callback and progress), kept
    alive as long as the evaluator, and the per-run bookkeeping: an exception
    raised by a Python callable stops the run and is re-raised after the C call
    returns; Ctrl-C is handled as in _Progress (the progress trampoline is
    always installed, so the run stops at the end of the current episode).

    The hooks hold no reference to the Evaluator, so no reference cycle keeps
    it alive."""

    def __init__(self):
        self.method = None          # fn(support, query) -> predictions
        self.progress = None        # fn(episode, n_episodes, accuracy) -> stop?
        self.exc = None
        self.interrupted = False
        self._old_handler = None
        self.cb_cfn = _lib.gtl_eval_fn(self._method)
        self.progress_cfn = _lib.gtl_eval_progress_fn(self._progress)

    def __enter__(self):
        self.exc = None
        self.interrupted = False
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
            self._old_handler = None
        return False

    def _on_sigint(self, signum, frame):
        self.interrupted = True

    def _method(self, _ud, support, query, out_pred):
        scope = _CallScope()
        try:
            if self.interrupted:
                return int(Status.CANCELLED)
            sup = Dataset._view(support, scope)
            qry = Dataset._view(query, scope)
            n = _query_size(qry)
            pred = _ints(self.method(sup, qry), n, np.int64, "Evaluator callback",
                         "predictions")
            if n:
                np.ctypeslib.as_array(out_pred, (n,))[:] = pred
            return 0
        except BaseException as e:      # noqa: B902 (KeyboardInterrupt must stop it too)
            # CANCELLED: the run stops and keeps the completed episodes, as when
            # the progress callable stops it; finish() re-raises e.
            self.exc = e
            return int(Status.CANCELLED)
        finally:
            scope.closed = True

    def _progress(self, _ud, episode, n_episodes, acc):
        try:
            if self.interrupted:
                return 1
            if self.progress is None:
                return 0
            return 1 if self.progress(int(episode), int(n_episodes), float(acc)) else 0
        except BaseException as e:      # noqa: B902
            self.exc = e
            return 1

    def finish(self, status):
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        if self.interrupted:
            raise KeyboardInterrupt
        _check(status)


class Evaluator(_Handle):
    """Runs a few-shot METHOD over a protocol and keeps the results (gtl_evaluator).

    ``Evaluator(EvalMethod.NEAREST_CENTROID, n_way=5, k_shot=1, episodes=600)``
    sets any EvalParam by its lower-case name; each is also a property
    (``ev.n_way = 5``; the modality masks take a Modality, a list of them or an
    int mask). The method needs, for CALLBACK, ``callback=fn`` or
    set_callback(fn); for GTL, ``model=`` or set_model(model) (copied).

    Runs: run_episodic(source), run_all_way(source), run_episode_list(source,
    list); each returns (mean, ci95, n) of the total accuracy and replaces the
    previous results. Results: result(), results(), accuracies(),
    episode_list(), episode_records(), report(), write(). Use it as a context manager
    or close() it.
    """

    _destroy = _lib.gtl_evaluator_destroy

    def __init__(self, method=EvalMethod.NEAREST_CENTROID, model=None, callback=None,
                 progress=None, **settings):
        method = EvalMethod(method)
        h = c_void_p()
        _check(_lib.gtl_evaluator_create(int(method), byref(h)))
        self._h = h.value
        self._method = method
        self._guard = _Guard("Evaluator")
        self._hooks = _EvalHooks()
        try:
            # Always installed: Ctrl-C and exceptions stop a run at the next episode.
            _check(_lib.gtl_evaluator_set_progress(self._h, self._hooks.progress_cfn, None))
            for k, v in settings.items():
                self.set(k, v)
            if model is not None:
                self.set_model(model)
            if callback is not None:
                self.set_callback(callback)
            self.set_progress(progress)
        except BaseException:
            self.close()
            raise

    @property
    def method(self):
        """The EvalMethod the evaluator was created with."""
        return self._method

    # ---- settings ----

    @staticmethod
    def _key(key):
        if isinstance(key, str):
            try:
                return EvalParam[key.upper()]
            except KeyError:
                raise InvalidArgument(f"Evaluator: unknown setting {key!r}") from None
        return EvalParam(key)

    def set(self, key, value):
        key = self._key(key)
        with self._guard:
            if key in _EVAL_FLOAT_KEYS:
                _check(_lib.gtl_evaluator_set_f32(self._handle(), key, float(value)))
                return
            if key in _EVAL_MASK_KEYS and isinstance(value, (Modality, list, tuple, set,
                                                             frozenset)):
                value = _mask(value)
            elif isinstance(value, float) and not value.is_integer():
                raise InvalidArgument(f"Evaluator.set: {key.name} is an integer (got {value})")
            _check(_lib.gtl_evaluator_set_i64(self._handle(), key, int(value)))

    def get(self, key):
        key = self._key(key)
        with self._guard:
            if key in _EVAL_FLOAT_KEYS:
                v = c_float()
                _check(_lib.gtl_evaluator_get_f32(self._handle(), key, byref(v)))
            else:
                v = c_int64()
                _check(_lib.gtl_evaluator_get_i64(self._handle(), key, byref(v)))
        return v.value

    def settings(self):
        """Every setting as a dict {lower-case name: value}."""
        return {k.name.lower(): self.get(k) for k in EvalParam}

    # ---- method ----

    def set_model(self, model):
        """The pretrained model of a GTL evaluator, copied now (later changes to
        ``model`` do not affect the evaluator)."""
        with self._guard, model._guard:
            _check(_lib.gtl_evaluator_set_model(self._handle(), model._handle()))

    def set_callback(self, fn):
        """The method of a CALLBACK evaluator: ``fn(support, query)`` gets the
        episode's sets as read-only Dataset views (labels 0..N-1; the query labels
        are the truth, do not use them; the views are valid only during the call)
        and returns one prediction in 0..N-1 per query row. An exception in ``fn``
        stops the run and is re-raised from the run method. None unsets it."""
        if fn is not None and not callable(fn):
            raise InvalidArgument("Evaluator.set_callback: fn must be callable or None")
        with self._guard:
            cfn = _lib.gtl_eval_fn() if fn is None else self._hooks.cb_cfn
            _check(_lib.gtl_evaluator_set_callback(self._handle(), cfn, None))
            self._hooks.method = fn

    def set_progress(self, fn):
        """``fn(episode, n_episodes, accuracy)`` after each episode (episode counts
        from 1); a true return value stops the run, which then raises Cancelled
        and keeps the completed episodes' results. None: no callable."""
        if fn is not None and not callable(fn):
            raise InvalidArgument("Evaluator.set_progress: fn must be callable or None")
        self._hooks.progress = fn

    # ---- runs ----

    def _run(self, cfunc, *args):
        with self._hooks as hooks, self._guard:
            st = cfunc(self._handle(), *args)
        hooks.finish(st)
        return self.result()

    def run_episodic(self, source):
        """EPISODES episodes of N_WAY-way K_SHOT-shot Q_QUERY-query from ``source``
        (episode e's seed depends only on SEED and e). Returns (mean, ci95, n)."""
        return self._run(_lib.gtl_evaluator_run_episodic, source._handle())

    def run_all_way(self, source):
        """Every class of ``source`` at once, K_SHOT per class and support modality,
        the rest as test set; ALL_WAY_REPEATS draws. Returns (mean, ci95, n)."""
        return self._run(_lib.gtl_evaluator_run_all_way, source._handle())

    def run_episode_list(self, source, episode_list):
        """Replays a saved episode list (episode_list() of this or another
        evaluator: a flat int64 array) on ``source``. Returns (mean, ci95, n)."""
        lst = _int_array(episode_list, "Evaluator.run_episode_list", "episode_list")
        return self._run(_lib.gtl_evaluator_run_episode_list, source._handle(),
                         _ptr(lst, _pi64), lst.size)

    # ---- results ----

    def result(self, modality=None):
        """(mean, ci95, n) accuracy over the episodes of the last run: overall
        (None / "total") or for one query modality (a Modality, a tag or a
        report name such as "sketch"). NaN where undefined."""
        m = _modality_arg(modality, "Evaluator.result")
        mean, ci, n = c_double(), c_double(), c_int64()
        with self._guard:
            _check(_lib.gtl_evaluator_result(self._handle(), m, byref(mean), byref(ci),
                                             byref(n)))
        return mean.value, ci.value, n.value

    def accuracies(self, modality=None):
        """Per-episode accuracies of the last run, float64 (n_episodes,) (NaN
        where an episode had no query of that modality)."""
        m = _modality_arg(modality, "Evaluator.accuracies")
        n = c_int64()
        with self._guard:
            h = self._handle()
            _check(_lib.gtl_evaluator_accuracies(h, m, None, 0, byref(n)))
            out = np.empty(n.value, np.float64)
            _check(_lib.gtl_evaluator_accuracies(h, m, _ptr(out, _pd), out.size, byref(n)))
        return out

    def results(self):
        """The results of the last run as a dict: {"total": {"mean", "ci95", "n"},
        "<modality>": {...} for each query modality present} (the JSON report's
        "accuracy" object, with NaN for null)."""
        out = {}
        for m in [EVAL_TOTAL] + list(range(EVAL_NUM_MODALITIES)):
            mean, ci, n = self.result(m)
            if m == EVAL_TOTAL or n > 0:
                out["total" if m == EVAL_TOTAL else _modality_name(m)] = \
                    {"mean": mean, "ci95": ci, "n": n}
        return out

    @property
    def num_episodes(self):
        """Episodes in the results of the last run."""
        n = c_int64()
        with self._guard:
            _check(_lib.gtl_evaluator_accuracies(self._handle(), EVAL_TOTAL, None, 0, byref(n)))
        return n.value

    def episode_list(self):
        """The episode list of the last run (flat int64: n_way, n_support, n_query,
        class labels, support rows, query rows, episode after episode)."""
        n = c_size_t()
        with self._guard:
            h = self._handle()
            _check(_lib.gtl_evaluator_episode_list(h, None, 0, byref(n)))
            out = np.empty(n.value, np.int64)
            _check(_lib.gtl_evaluator_episode_list(h, _ptr(out, _pi64), out.size, byref(n)))
        return out

    def episode_records(self):
        """The episodes of the last run as a list of dicts {"classes", "support",
        "query"} of int64 arrays (source labels and source rows)."""
        lst = self.episode_list()
        out, pos = [], 0
        while pos < lst.size:
            nw, ns, nq = (int(v) for v in lst[pos:pos + 3])
            a = pos + 3
            out.append({"classes": lst[a:a + nw].copy(),
                        "support": lst[a + nw:a + nw + ns].copy(),
                        "query": lst[a + nw + ns:a + nw + ns + nq].copy()})
            pos = a + nw + ns + nq
        return out

    @staticmethod
    def _format(fmt):
        if isinstance(fmt, str):
            try:
                return EvalFormat[fmt.upper()]
            except KeyError:
                raise InvalidArgument(f"Evaluator: unknown report format {fmt!r} "
                                      "(json or markdown)") from None
        return int(fmt)

    @staticmethod
    def _flags(episodes, header):
        return (EVAL_REPORT_EPISODES if episodes else 0) | \
            (0 if header else EVAL_REPORT_NO_HEADER)

    def report(self, format=EvalFormat.JSON, episodes=False, header=True):
        """The results as text: JSON (``episodes=True`` adds the episode list and
        per-episode accuracies) or a Markdown table (``header=False``: the row
        alone, to stack several evaluators under one header)."""
        fmt, flags = self._format(format), self._flags(episodes, header)
        n = c_size_t()
        with self._guard:
            h = self._handle()
            _check(_lib.gtl_evaluator_report(h, fmt, flags, None, 0, byref(n)))
            buf = create_string_buffer(n.value + 1)
            _check(_lib.gtl_evaluator_report(h, fmt, flags, buf, len(buf), byref(n)))
        return buf.raw[:n.value].decode("utf-8")

    def write(self, path, format=EvalFormat.JSON, episodes=False, header=True):
        """Writes report() text to ``path`` (created or truncated)."""
        fmt, flags = self._format(format), self._flags(episodes, header)
        with self._guard:
            _check(_lib.gtl_evaluator_write_file(self._handle(), fmt, flags,
                                                 os.fsencode(path)))

    def __repr__(self):
        if self.closed:
            return "<gtl.Evaluator closed>"
        return f"<gtl.Evaluator {self._method.name}>"


def _eval_property(key):
    return property(lambda self: self.get(key), lambda self, v: self.set(key, v),
                    doc=f"EvalParam.{key.name}")


for _k in EvalParam:
    setattr(Evaluator, _k.name.lower(), _eval_property(_k))
del _k

__all__ += [
    "EvalMethod", "EvalParam", "EvalFormat", "EVAL_TOTAL", "EVAL_NUM_MODALITIES",
    "EVAL_REPORT_EPISODES", "EVAL_REPORT_NO_HEADER", "Evaluator", "nearest_centroid",
    "linear_probe", "accuracy", "mean_ci", "confusion",
]



# ---------------------------------------------------------------------------
# Backbones and images
# ---------------------------------------------------------------------------

_pu8 = POINTER(c_uint8)


def _images(x, side, where):
    """Preprocessed images as a C-contiguous float32 (n, 3, S, S) array."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim == 3:
        a = a.reshape((1,) + a.shape)
    if a.ndim != 4 or a.shape[1:] != (3, side, side):
        raise InvalidArgument(f"{where}: images must be (n, 3, {side}, {side}), got shape "
                              f"{a.shape}")
    return a


class Backbone(_Handle):
    """An image backbone (gtl_backbone): images -> feature vectors.

    ``Backbone(BackbonePreset.CLIP_VIT_B16, batch_size=16)`` makes fresh
    weights; ``Backbone.load(path)`` reads a libgtl backbone checkpoint or CLIP
    safetensors (Hugging Face CLIPVisionModelWithProjection, or a file written
    by bindings/python/tools/convert_clip.py). Settings are BackboneParam
    values, by enum or lower-case name, also as properties (``bb.batch_size``).
    """

    _destroy = _lib.gtl_backbone_destroy

    def __init__(self, preset=BackbonePreset.CLIP_VIT_B16, **settings):
        h = c_void_p()
        _check(_lib.gtl_backbone_create(int(preset), byref(h)))
        self._h = h.value
        self._guard = _Guard("Backbone")
        try:
            for k, v in settings.items():
                self.set(k, v)
        except BaseException:
            self.close()
            raise

    @classmethod
    def load(cls, path):
        """A Backbone from a file (recognised by its content)."""
        h = c_void_p()
        _check(_lib.gtl_backbone_load(os.fsencode(path), byref(h)))
        bb = cls.__new__(cls)
        bb._h = h.value
        bb._guard = _Guard("Backbone")
        return bb

    def save(self, path):
        """Writes a libgtl backbone checkpoint (atomically)."""
        with self._guard:
            _check(_lib.gtl_backbone_save(self._handle(), os.fsencode(path)))

    @staticmethod
    def _key(key):
        if isinstance(key, str):
            try:
                return BackboneParam[key.upper()]
            except KeyError:
                raise InvalidArgument(f"Backbone: unknown setting {key!r}") from None
        return BackboneParam(key)

    def set(self, key, value):
        key = self._key(key)
        if key in _BACKBONE_F32:
            with self._guard:
                _check(_lib.gtl_backbone_set_f32(self._handle(), key, float(value)))
            return
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgument(f"Backbone.set: {key.name} is an integer (got {value})")
        with self._guard:
            _check(_lib.gtl_backbone_set_i64(self._handle(), key, int(value)))

    def get(self, key):
        key = self._key(key)
        if key in _BACKBONE_F32:
            f = c_float()
            with self._guard:
                _check(_lib.gtl_backbone_get_f32(self._handle(), key, byref(f)))
            return f.value
        v = c_int64()
        with self._guard:
            _check(_lib.gtl_backbone_get_i64(self._handle(), key, byref(v)))
        return v.value

    def settings(self):
        """Every setting as a dict {lower-case name: value}."""
        return {k.name.lower(): self.get(k) for k in BackboneParam}

    def embed(self, images):
        """Features (n, F) float32 of preprocessed images (n, 3, S, S) (or one (3, S, S))."""
        a = _images(images, self.image_size, "Backbone.embed")
        n = a.shape[0]
        with self._guard:
            f = c_int64()
            _check(_lib.gtl_backbone_get_i64(self._handle(), BackboneParam.FEATURE_DIM,
                                             byref(f)))
            out = np.empty((n, f.value), np.float32)
            _check(_lib.gtl_backbone_embed(self._handle(), _ptr(a, _pf), n, _ptr(out, _pf),
                                           out.size))
        return out

    def embed_files(self, paths, strict=False):
        """Decodes, preprocesses and embeds image files.

        Returns (features (n, F) float32, statuses list of Status). A file that
        cannot be used gets a zero row and its status; with strict=True the
        first failure raises instead (the message names the file).
        """
        paths = [os.fspath(p) for p in paths]
        n = len(paths)
        if n == 0:
            return np.zeros((0, self.feature_dim), np.float32), []
        arr = (c_char_p * n)(*[os.fsencode(p) for p in paths])
        statuses = (c_int * n)()
        with self._guard:
            f = c_int64()
            _check(_lib.gtl_backbone_get_i64(self._handle(), BackboneParam.FEATURE_DIM,
                                             byref(f)))
            out = np.empty((n, f.value), np.float32)
            st = _lib.gtl_backbone_embed_files(self._handle(), arr, n, _ptr(out, _pf), out.size,
                                               statuses)
            msg = last_error()
        sts = [Status(v) for v in statuses]
        if st != 0 and (strict or all(v != Status.OK for v in sts)):
            raise _error(st, msg)
        return out, sts

    def set_cache_dir(self, path):
        """Sets (or with None clears) the on-disk feature cache of embed_files()."""
        with self._guard:
            _check(_lib.gtl_backbone_set_cache_dir(self._handle(),
                                                   None if path is None else os.fsencode(path)))

    def train_step(self, optimizer, images, labels):
        """One supervised step (linear head over NUM_CLASSES, cross-entropy) on a batch;
        returns {"loss", "accuracy", "grad_norm", "lr"}. NumericError: nothing changed."""
        a = _images(images, self.image_size, "Backbone.train_step")
        y = _ints(labels, a.shape[0], np.int64, "Backbone.train_step", "labels")
        stats = np.zeros(4, np.float32)
        with self._guard, optimizer._guard:
            _check(_lib.gtl_backbone_train_step(self._handle(), optimizer._handle(),
                                                _ptr(a, _pf), a.shape[0], _ptr(y, _pi64),
                                                _ptr(stats, _pf), 4))
        return dict(zip(("loss", "accuracy", "grad_norm", "lr"), (float(v) for v in stats)))

    def __repr__(self):
        if self.closed:
            return "<gtl.Backbone closed>"
        return (f"<gtl.Backbone S={self.image_size} F={self.feature_dim} "
                f"trainable_blocks={self.trainable_blocks} classes={self.num_classes}>")


def _backbone_property(key):
    return property(lambda self: self.get(key), lambda self, v: self.set(key, v),
                    doc=f"BackboneParam.{key.name}")


for _k in BackboneParam:
    setattr(Backbone, _k.name.lower(), _backbone_property(_k))
del _k


def image_load(path, size=224):
    """Decodes an image file (PNG, JPEG, WebP) and preprocesses it CLIP-style:
    float32 (3, size, size)."""
    out = np.empty((3, size, size), np.float32)
    _check(_lib.gtl_image_load(os.fsencode(path), int(size), _ptr(out, _pf), out.size))
    return out


def image_preprocess(pixels, size=224):
    """CLIP preprocessing of uint8 pixels (H, W) gray, (H, W, 3) RGB or (H, W, 4)
    RGBA: float32 (3, size, size)."""
    p = np.asarray(pixels)
    if p.dtype != np.uint8:
        raise InvalidArgument(f"image_preprocess: pixels must be uint8 (got {p.dtype})")
    if p.ndim == 2:
        p = p[:, :, None]
    if p.ndim != 3:
        raise InvalidArgument(f"image_preprocess: pixels must be (H, W) or (H, W, C), got "
                              f"shape {p.shape}")
    p = np.ascontiguousarray(p)
    out = np.empty((3, size, size), np.float32)
    _check(_lib.gtl_image_preprocess(_ptr(p, _pu8), p.shape[0], p.shape[1], p.shape[2],
                                     int(size), _ptr(out, _pf), out.size))
    return out


def image_augment(path, flags, rng_state, size=224):
    """A random augmented view of an image file: (float32 (3, size, size), next rng_state).

    ``rng_state`` is any integer (a seed, or the state returned by the previous
    call); pass the returned state on for the next view."""
    state = c_uint64(int(rng_state) & 0xFFFFFFFFFFFFFFFF)
    out = np.empty((3, size, size), np.float32)
    _check(_lib.gtl_image_augment(os.fsencode(path), int(flags), byref(state), int(size),
                                  _ptr(out, _pf), out.size))
    return out, state.value
