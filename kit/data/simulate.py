"""The simulator behind the embedded dataset: one subject's session of simulated NREM-sleep EEG.

Lets every notebook and test run without the Kaggle data.  Each subject is
one simulated session of auditory cues (targeted memory reactivation), the
emotional and neutral cues interleaved; every trial is the 1 s after a cue
at 200 Hz on the competition's 16 channels, in µV.  A trial is the sum of:

* aperiodic 1/f^chi background (chi ~ 1.5-2; Donoghue et al., Nat. Neurosci.
  2020), spread over the scalp by a smooth volume-conduction mixing matrix
  built from the 10-20 positions, plus a common reference (mastoid) part;
* slow oscillations, 0.5-1.5 Hz, large and frontal, travelling front to back
  and growing with a slowly drifting sleep depth (N2 <-> N3; Massimini et al.,
  J. Neurosci. 2004; AASM scoring manual: N3 slow waves > 75 µV peak-to-peak);
* sleep spindles, 12-15 Hz waxing-waning bursts of 0.5-2 s at random times,
  centro-parietal, commoner in light sleep (AASM: 11-16 Hz, >= 0.5 s);
* the cue-evoked response common to both classes: small N1/P2, a K-complex-
  like frontal negativity at ~0.5 s in a fraction of trials (Halasz, Sleep
  Med. Rev. 2005), jittered, and a burst of evoked theta/alpha power;
* a late fronto-central theta (4-8 Hz) burst with random phase, Gaussian in
  time around 0.5 s: with ``kind="theta"`` (the default; other kinds below)
  its power in emotional trials is scaled by
  ``exp(effect * r_s)``, with the log power ratio ``r_s`` drawn per subject
  around a positive mean (a few subjects ~0 or slightly negative).  This is the decodable effect: a theta
  power increase ~0.4-0.6 s after the cue, as reported by Abdellahi,
  Tsimpanouli & Lewis (bioRxiv 2025.08.11.669349); weak on single trials;
* subject gains, per-channel gains, white sensor noise and rare artefacts
  (slow drifts, electrode pops, muscle bursts).

With the 2nd-place recipe (theta covariance, shrinkage LDA) the simulated
data decode at roughly 0.55-0.60 mean per-subject AUC leave-one-subject-out
(``effect=1``) and at chance with ``effect=0``.

Kinds of class effect
---------------------
``kind`` (:data:`KINDS`) chooses what differs between the classes; the rest
of the trial (background, slow oscillations, spindles, the common evoked
response, the late theta burst, artefacts, noise, gains) is drawn from the
same random streams for every kind, so two kinds with the same seed share
every trial's background sample for sample.  ``effect`` scales the class
effect of every kind (0 gives identical statistics for both classes).  The
per-subject effect ``r_s`` and the kind's other constants come from their
own seeded streams (``[seed, sid, 10]`` per subject, ``[seed, sid, 11]`` per
trial, ``[seed, 10]`` / ``[seed, 11]`` for the signs), so ``theta`` draws
exactly the numbers it always drew.

``theta`` (default)
    The late fronto-central theta burst above (4-8 Hz, ~0.4-0.6 s, random
    phase): emotional power x ``exp(effect * r_s)``, ``r_s ~ N(EFFECT_MEAN,
    EFFECT_SD)``.
``evoked``
    A late phase-locked slow positive wave (an ERP component like the late
    positive potential): Gaussian in time, peak at ``EVOKED_LAT`` ± 0.03 s per
    subject (``EVOKED_SIGMA`` wide, ~0.4-0.7 s), per-trial latency jitter
    ``EVOKED_JITTER``, centro-parietal (around CPz), ``EVOKED_UV`` µV in
    neutral trials; in emotional trials its amplitude is x ``exp(effect *
    r_s)``, ``r_s ~ N(EVOKED_MEAN, EVOKED_SD)``.  The late theta burst is the
    same in both classes, so the ongoing band power does not differ: only the
    phase-locked waveform (its power below ~4 Hz) does.
``lateral``
    Ongoing mu (10-12 Hz) and beta (18-24 Hz) rhythms, random phase, from a
    left (C3 C5 CP3 CP5) and a right (C4 C6 CP4 CP6) central source in both
    classes (``MU_UV``, ``BETA_UV``).  From ``LATERAL_ONSET`` (a 0.04 s
    logistic ramp) to the end of the trial, emotional trials have left power
    x ``exp(-effect * r_s / 2)`` and right power x ``exp(+effect * r_s / 2)``,
    neutral trials the reverse (a motor-imagery-like event-related
    desynchronisation contrast, emotional/neutral power ratio
    ``exp(-effect * r_s)`` on the left, ``exp(+effect * r_s)`` on the
    right), ``r_s ~ N(LATERAL_MEAN, LATERAL_SD)``.  No theta effect.
``signflip``
    The theta effect with ``r_s = sign_s * |N(SIGNFLIP_MEAN, SIGNFLIP_SD)|``:
    ``sign_s`` is + for ``round(SIGNFLIP_POSITIVE x n)`` of the 14 training
    subjects (and of the 3 test subjects), - for the others, which ones
    drawn from the seed; a model trained across subjects sees a weak,
    partly cancelling average (the 2nd place found 8 subjects one way and 6
    the other in the real data).
``null``
    No class effect at all (the arrays of ``theta`` with ``effect=0``).

The constants are calibrated so that at the demo size (scale 0.2, seeds 0
and 1) the best anchor's LOSO window score lands at about 0.55-0.60:
``evoked`` EEGNet 0.57 / 0.58 (band-power anchors <= 0.55), ``lateral``
band power 0.58 / 0.59, ``signflip`` 0.56 / 0.56 (theta covariance / band
power), ``null`` <= 0.53 (the metric's chance floor at this size).
"""


from __future__ import annotations

import numpy as np

from kit.data.layout import CH_NAMES, N_TIMES, SFREQ, TEST_IDS, TRAIN_IDS

EFFECT_MEAN = 0.65
"""Mean over subjects of ``r_s``: emotional late-theta power = exp(effect * r_s) x neutral."""
EFFECT_SD = 0.45
"""Spread of ``r_s`` over subjects (a few land near 0 or slightly below)."""
LATE_THETA_UV = 6.0
"""RMS amplitude (µV, before gains) of the late theta burst at its peak in neutral trials."""

KINDS = ("theta", "evoked", "lateral", "signflip", "null")
"""Kinds of class effect (module docstring); ``theta`` is the default."""

# ``evoked``: a late phase-locked slow positive wave, larger after emotional cues
EVOKED_UV = 5.0        # µV (before gains): its peak amplitude at the centre of its topography, neutral trials
EVOKED_LAT = 0.55      # s: mean over subjects of its peak latency (per subject ± U(-0.03, 0.03))
EVOKED_SIGMA = 0.08    # s: Gaussian width in time (most of it in 0.4-0.7 s)
EVOKED_JITTER = 0.03   # s: SD of the latency from trial to trial
EVOKED_MEAN = 0.6      # mean over subjects of r_s: emotional amplitude = exp(effect * r_s) x neutral
EVOKED_SD = 0.4        # SD of r_s over subjects

# ``lateral``: mu/beta power lateralised left vs right, from LATERAL_ONSET on
MU_UV = 4.0            # µV (before gains): RMS of the mu rhythm (10-12 Hz) at each central source
BETA_UV = 2.0          # µV: RMS of the beta rhythm (18-24 Hz) at each central source
LATERAL_ONSET = 0.3    # s: middle of the 0.04-s logistic ramp at which the class contrast sets in
LATERAL_MEAN = 0.3     # mean over subjects of r_s: emotional/neutral power = exp(-effect * r_s) left, exp(+) right
LATERAL_SD = 0.2       # SD of r_s over subjects

# ``signflip``: the theta effect with a sign that differs between subjects
SIGNFLIP_MEAN = 1.0    # mean of the normal folded into |r_s| (larger than EFFECT_MEAN: clear within each subject)
SIGNFLIP_SD = 0.45     # SD of the normal folded into |r_s| (as EFFECT_SD)
SIGNFLIP_POSITIVE = 4 / 7  # fraction with r_s > 0, rounded per split: 8 of 14 training, 2 of 3 test subjects

# unit vectors of the 10-20 positions (MNE standard_1020 montage, normalised)
POS = np.array([
    [-0.595, 0.629, 0.500], [0.607, 0.636, 0.478], [-0.707, -0.126, 0.696], [0.721, -0.117, 0.683],
    [0.004, -0.091, 0.996], [-0.928, -0.159, 0.337], [0.934, -0.143, 0.327], [-0.619, -0.458, 0.639],
    [0.638, -0.446, 0.628], [-0.818, -0.479, 0.318], [0.831, -0.460, 0.311], [-0.702, -0.712, -0.024],
    [0.707, -0.707, -0.025], [0.003, -0.701, 0.714], [-0.252, -0.965, 0.076], [0.256, -0.964, 0.076]])
_FZ = np.array([0.004, 0.661, 0.751])
_FCZ = np.array([0.004, 0.295, 0.955])
_CPZ = np.array([0.003, -0.420, 0.907])
_CZ_LIKE = np.array([0.004, 0.100, 0.995])
_LATERAL = np.array([c in ("C5", "C6", "CP5", "CP6", "P7", "P8", "O1", "O2") for c in CH_NAMES])
_LEFT_CENTRAL = ("C3", "C5", "CP3", "CP5")
_RIGHT_CENTRAL = ("C4", "C6", "CP4", "CP6")


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _topo(center, width):
    """Gaussian of the angle (rad) between each channel and ``center``: (16,) in (0, 1]."""
    ang = np.arccos(np.clip(POS @ _unit(np.asarray(center, float)), -1.0, 1.0))
    return np.exp(-0.5 * (ang / width) ** 2)


def _subject_params(seed: int, sid: int) -> dict:
    """Per-subject constants; independent of ``scale`` (own random stream)."""
    rng = np.random.default_rng([seed, sid, 0])
    ang = np.arccos(np.clip(POS @ POS.T, -1, 1))
    width = rng.uniform(0.3, 0.45)
    mix = np.exp(-0.5 * (ang / width) ** 2)
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    return dict(
        gain=rng.lognormal(0.0, 0.25), chan_gain=rng.lognormal(0.0, 0.1, 16),
        noise_sd=rng.uniform(0.5, 2.0, 16), chi=rng.uniform(1.5, 2.0), bg_uv=rng.uniform(9.0, 14.0),
        mix=mix.astype(np.float32), ref_w=rng.uniform(0.15, 0.35),
        so_freq=rng.uniform(0.7, 1.1), so_uv=rng.uniform(25.0, 45.0), depth_mean=rng.normal(0.0, 0.7),
        sp_freq=rng.uniform(12.3, 14.0), sp_rate=rng.uniform(0.3, 0.6), sp_uv=rng.uniform(8.0, 14.0),
        kc_prob=rng.uniform(0.2, 0.45), kc_uv=rng.uniform(25.0, 50.0), kc_lat=rng.uniform(0.45, 0.55),
        evoked_theta_uv=rng.uniform(3.0, 6.0), erp_uv=rng.uniform(2.0, 5.0),
        late_uv=LATE_THETA_UV * rng.lognormal(0.0, 0.2), late_lat=rng.uniform(0.47, 0.53),
        late_center=_FCZ + rng.normal(0.0, 0.15, 3),
        r=rng.normal(EFFECT_MEAN, EFFECT_SD),
    )


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`KINDS`; else a ValueError naming them."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return kind


def _signflip_sign(seed: int, sid: int) -> float:
    """+1 or -1: + for ``round(SIGNFLIP_POSITIVE x n)`` of the training (and of the test) subjects, by the seed."""
    for ids, k in ((sorted(TRAIN_IDS), 10), (sorted(TEST_IDS), 11)):
        if sid in ids:
            order = np.random.default_rng([seed, k]).permutation(len(ids))
            return 1.0 if order[ids.index(sid)] < round(SIGNFLIP_POSITIVE * len(ids)) else -1.0
    return 1.0 if np.random.default_rng([seed, sid, 12]).random() < SIGNFLIP_POSITIVE else -1.0


def _kind_params(seed: int, sid: int, kind: str) -> dict:
    """Per-subject constants of the class effect of ``kind`` (own stream ``[seed, sid, 10]``).

    ``r`` is the subject's effect before scaling by ``effect`` (0 for ``null``;
    the theta kind's ``r`` lives in :func:`_subject_params`).
    """
    rng = np.random.default_rng([seed, sid, 10])
    if kind == "evoked":
        return dict(r=rng.normal(EVOKED_MEAN, EVOKED_SD), lat=EVOKED_LAT + rng.uniform(-0.03, 0.03),
                    amp=rng.lognormal(0.0, 0.2), center=_CPZ + rng.normal(0.0, 0.15, 3))
    if kind == "lateral":
        return dict(r=rng.normal(LATERAL_MEAN, LATERAL_SD), mu_freq=rng.uniform(10.0, 12.0),
                    beta_freq=rng.uniform(18.0, 24.0), amp=rng.lognormal(0.0, 0.2, 2))
    if kind == "signflip":
        return dict(r=_signflip_sign(seed, sid) * abs(rng.normal(SIGNFLIP_MEAN, SIGNFLIP_SD)))
    return dict(r=0.0)


def _evoked_wave(rng, k: dict, labels: np.ndarray, effect: float, t: np.ndarray) -> np.ndarray:
    """The ``evoked`` kind's late positive wave: float32 (n, 16, n_times) in µV (before gains)."""
    n = len(labels)
    lat = k["lat"] + rng.normal(0.0, EVOKED_JITTER, (n, 1))
    amp = EVOKED_UV * k["amp"] * rng.lognormal(0.0, 0.4, (n, 1)) * \
        np.where(labels == 1, np.exp(effect * k["r"]), 1.0)[:, None]
    wave = amp * np.exp(-0.5 * ((t - lat) / EVOKED_SIGMA) ** 2)
    return (wave[:, None, :] * _topo(k["center"], 0.7)[None, :, None]).astype(np.float32)


def _narrowband(rng, lead: tuple, freq: float, bw: float, n_fft: int = 512) -> np.ndarray:
    """Unit-RMS random-phase noise with a Gaussian spectral peak at ``freq`` (SD ``bw``, Hz): ``lead + (N_TIMES,)``."""
    import scipy.fft
    white = rng.standard_normal(lead + (n_fft,))
    f = scipy.fft.rfftfreq(n_fft, 1.0 / SFREQ)
    out = scipy.fft.irfft(scipy.fft.rfft(white, axis=-1) * np.exp(-0.5 * ((f - freq) / bw) ** 2), n_fft, axis=-1)
    start = (n_fft - N_TIMES) // 2
    out = out[..., start:start + N_TIMES]
    return out / out.std()


def _lateral_rhythms(rng, k: dict, labels: np.ndarray, effect: float, t: np.ndarray) -> np.ndarray:
    """The ``lateral`` kind's mu + beta rhythms of the two central sources: float32 (n, 16, n_times), µV."""
    n = len(labels)
    rhythm = MU_UV * _narrowband(rng, (n, 2), k["mu_freq"], 1.0) + \
        BETA_UV * _narrowband(rng, (n, 2), k["beta_freq"], 2.5)          # (n, 2 sources: left, right, T)
    rhythm *= k["amp"][None, :, None] * rng.lognormal(0.0, 0.3, (n, 2, 1))
    ramp = 1.0 / (1.0 + np.exp(-(t - LATERAL_ONSET) / 0.04))              # (1, T)
    sgn = np.where(labels == 1, 1.0, -1.0)[:, None, None] * np.array([-1.0, 1.0])[None, :, None]
    rhythm *= np.exp(sgn * effect * k["r"] / 4.0 * ramp[None])             # amplitude: power ** 0.5
    topo = np.stack([_topo(np.mean([POS[CH_NAMES.index(c)] for c in side], axis=0), 0.4)
                     for side in (_LEFT_CENTRAL, _RIGHT_CENTRAL)])          # (2, 16)
    return np.einsum("sc,nst->nct", topo, rhythm).astype(np.float32)


def _colored(rng, lead: tuple, chi: float, n_fft: int = 512) -> np.ndarray:
    """Unit-variance noise with a 1/f^chi power spectrum (knee 0.5 Hz, gentle low-pass at 45 Hz).

    Returns float32 ``lead + (N_TIMES,)``, cut from the middle of ``n_fft`` samples.
    """
    import scipy.fft  # here, not at the top: the command line imports this module for KINDS
    white = rng.standard_normal(lead + (n_fft,), dtype=np.float32)
    f = scipy.fft.rfftfreq(n_fft, 1.0 / SFREQ)
    amp = (f ** 2 + 0.25) ** (-chi / 4.0) / np.sqrt(1.0 + (f / 45.0) ** 8)
    amp[0] = 0.0
    amp = (amp / np.sqrt(np.mean(amp ** 2))).astype(np.float32)
    out = scipy.fft.irfft(scipy.fft.rfft(white, axis=-1, workers=-1) * amp, n_fft, axis=-1, workers=-1)
    start = (n_fft - N_TIMES) // 2
    out = out[..., start:start + N_TIMES]
    return out / out.std()


def _burst(rng, n, freq, center, sigma, t):
    """Random-phase oscillations with a Gaussian envelope: (n, n_times), Rayleigh amplitude, RMS 1 at the peak."""
    g = rng.standard_normal((2, n, 1))
    ph = 2 * np.pi * freq[:, None] * (t - center[:, None])
    env = np.exp(-0.5 * ((t - center[:, None]) / sigma) ** 2)
    return (env * (g[0] * np.cos(ph) + g[1] * np.sin(ph))).astype(np.float32)


def simulate_subject(seed: int, sid: int, labels: np.ndarray, effect: float = 1.0,
                     kind: str = "theta") -> tuple[np.ndarray, dict]:
    """Simulate one subject's session of cue trials.

    Parameters
    ----------
    seed : int
        Dataset seed.
    sid : int
        Subject id (selects the subject's constants and random stream).
    labels : ndarray, shape (n_trials,)
        1 emotional, 0 neutral, in session (cue) order.
    effect : float
        Scale of the emotional effect; 0 gives identical statistics for both classes.
    kind : str
        What differs between the classes, one of :data:`KINDS` (module docstring).

    Returns
    -------
    X : ndarray, shape (n_trials, 16, 200), float32
        EEG in µV, channels :data:`kit.data.layout.CH_NAMES`.
    info : dict
        ``r`` (the subject's effect of this kind before scaling: a log power
        or log amplitude ratio, 0 for ``null``), ``kind``, ``depth``
        (n_trials,) in [0, 1] and ``stage`` (n_trials,) 2 or 3.

    Raises
    ------
    ValueError
        Unknown ``kind``.
    """
    check_kind(kind)
    from scipy.signal import lfilter

    p = _subject_params(seed, sid)
    k = p if kind == "theta" else _kind_params(seed, sid, kind)
    rng = np.random.default_rng([seed, sid, 1])
    labels = np.asarray(labels)
    n, C = len(labels), len(CH_NAMES)
    t = (np.arange(N_TIMES) / SFREQ)[None]
    # sleep depth: slow AR(1) drift over the session, in (0, 1)
    depth = 1.0 / (1.0 + np.exp(-(p["depth_mean"] + lfilter([0.2], [1, -0.98], rng.standard_normal(n)) * 1.5)))

    # aperiodic background through a smooth mixing matrix, plus a common reference part
    src = _colored(rng, (n, C + 1), p["chi"])
    X = np.einsum("ij,njt->nit", p["mix"], src[:, :C]) + p["ref_w"] * src[:, C:]
    X *= p["bg_uv"]

    # slow oscillations (frontal, travelling backwards), larger in deep sleep
    f_so = np.clip(p["so_freq"] * rng.uniform(0.7, 1.4, n), 0.5, 1.5)
    a_so = p["so_uv"] * depth ** 1.5 * rng.lognormal(0.0, 0.3, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    delay = (POS[:, 1] - POS[:, 1].max()) * -0.06  # s, front to back
    ph = 2 * np.pi * f_so[:, None, None] * (t[None] - delay[None, :, None]) + phi[:, None, None]
    so = np.cos(ph) + 0.3 * np.cos(2 * ph)
    X += (a_so[:, None, None] * _topo(_FZ, 0.9)[None, :, None] * so).astype(np.float32)

    # sleep spindles: waxing-waning 12-15 Hz bursts, 0.5-2 s, at random times, centro-parietal
    has = rng.random(n) < p["sp_rate"] * (1.2 - 0.7 * depth)
    c, dur = rng.uniform(-0.6, 1.6, n), rng.uniform(0.5, 2.0, n)
    f_sp = np.clip(p["sp_freq"] + rng.normal(0, 0.4, n), 12.0, 15.0)
    u = np.clip((t - c[:, None]) / dur[:, None], -0.5, 0.5)
    sp = np.cos(np.pi * u) ** 2 * np.sin(2 * np.pi * f_sp[:, None] * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    a_sp = has * p["sp_uv"] * rng.lognormal(0.0, 0.3, n)
    X += (a_sp[:, None] * sp)[:, None, :].astype(np.float32) * _topo(_CPZ, 0.7)[None, :, None].astype(np.float32)

    # cue-evoked response common to both classes
    jit = rng.normal(0.0, 0.02, (n, 1))
    erp = p["erp_uv"] * (-0.8 * np.exp(-0.5 * ((t - 0.11 - jit) / 0.025) ** 2)
                         + np.exp(-0.5 * ((t - 0.21 - jit) / 0.04) ** 2))
    kc_on = rng.random(n) < p["kc_prob"] * (0.5 + depth)
    lat = p["kc_lat"] + rng.normal(0.0, 0.05, (n, 1))
    a_kc = kc_on[:, None] * p["kc_uv"] * rng.lognormal(0.0, 0.35, (n, 1))
    kc = a_kc * (-np.exp(-0.5 * ((t - lat) / 0.07) ** 2) + 0.45 * np.exp(-0.5 * ((t - lat - 0.38) / 0.11) ** 2))
    X += ((erp + kc)[:, None, :] * _topo(_FCZ, 0.8)[None, :, None]).astype(np.float32)
    ev = _burst(rng, n, rng.uniform(4.5, 10.0, n), rng.normal(0.28, 0.04, n), 0.1, t)
    X += (p["evoked_theta_uv"] * ev)[:, None, :] * _topo(_CZ_LIKE, 0.8)[None, :, None].astype(np.float32)

    # late fronto-central theta (the emotional effect: power scaled in emotional trials)
    late = _burst(rng, n, rng.uniform(4.5, 7.5, n), p["late_lat"] + rng.normal(0.0, 0.03, n), 0.08, t)
    r_theta = k["r"] if kind in ("theta", "signflip") else 0.0
    power = np.where(labels == 1, np.exp(effect * r_theta), 1.0)
    X += ((p["late_uv"] * np.sqrt(power))[:, None] * late)[:, None, :] * \
        _topo(p["late_center"], 0.7)[None, :, None].astype(np.float32)

    # the other kinds' class effects, from their own random stream (the main stream above stays as it is)
    if kind == "evoked":
        X += _evoked_wave(np.random.default_rng([seed, sid, 11]), k, labels, effect, t)
    elif kind == "lateral":
        X += _lateral_rhythms(np.random.default_rng([seed, sid, 11]), k, labels, effect, t)

    _artefacts(rng, X, t)
    X += rng.standard_normal(X.shape, dtype=np.float32) * p["noise_sd"][None, :, None].astype(np.float32)
    X *= (p["gain"] * p["chan_gain"]).astype(np.float32)[None, :, None]
    stage = np.where(depth > 0.6, 3, 2)
    return X.astype(np.float32, copy=False), dict(r=float(k["r"]), kind=kind, depth=depth, stage=stage)


def _artefacts(rng, X, t):
    """Add rare artefacts in place: slow drifts (2 %), electrode pops (1.5 %), muscle bursts (2 %)."""
    import scipy.fft
    n, C, T = X.shape
    idx = np.flatnonzero(rng.random(n) < 0.02)  # slow drift, frontal-weighted
    if idx.size:
        k = rng.normal(0, 1, (idx.size, 2)) * [60.0, 40.0]
        drift = k[:, :1] * (t - 0.5) + k[:, 1:] * ((t - 0.5) ** 2 - 1 / 12) * 4
        X[idx] += (drift[:, None, :] * (0.5 + 0.5 * _topo(_FZ, 1.0))[None, :, None]).astype(np.float32)
    idx = np.flatnonzero(rng.random(n) < 0.015)  # electrode pop: a jump decaying over ~0.1-0.3 s
    if idx.size:
        ch = rng.integers(0, C, idx.size)
        t0 = rng.uniform(0.0, 0.9, (idx.size, 1))
        tau = rng.uniform(0.1, 0.3, (idx.size, 1))
        a = rng.choice([-1.0, 1.0], (idx.size, 1)) * rng.uniform(60.0, 200.0, (idx.size, 1))
        X[idx, ch] += (a * (t >= t0) * np.exp(-np.clip(t - t0, 0, None) / tau)).astype(np.float32)
    idx = np.flatnonzero(rng.random(n) < 0.02)  # muscle: 20-90 Hz noise bursts on lateral channels
    if idx.size:
        hf = rng.standard_normal((idx.size, C, T), dtype=np.float32)
        spec = scipy.fft.rfft(hf, axis=-1)
        spec[..., scipy.fft.rfftfreq(T, 1 / SFREQ) < 20.0] = 0
        hf = scipy.fft.irfft(spec, T, axis=-1)
        c, d = rng.uniform(0.1, 0.9, (idx.size, 1)), rng.uniform(0.1, 0.5, (idx.size, 1))
        env = np.exp(-0.5 * ((t - c) / (d / 2)) ** 2) * rng.uniform(10.0, 30.0, (idx.size, 1))
        w = _LATERAL[None, :] * rng.uniform(0.3, 1.0, (idx.size, C))
        X[idx] += (env[:, None, :] * w[:, :, None] * hf).astype(np.float32)
