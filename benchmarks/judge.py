"""An independent judge of the offline engine (issue 21): a pre-trained tagger and a speech recogniser listen.

    make judge                                   # builds .venv-judge, then runs this
    .venv/bin/python benchmarks/judge.py [--quick] [--families hiphop,blues] [--seeds 1 2]

The engine's own confusion table only proves that its recipes are self-consistent; a listener trained on
real music is the test that matters. This script has two halves in two venvs, because musicnn needs
TensorFlow 2.15 and numpy<2, which must stay out of the main venv:

1. Rendering (main venv, imports `textmusic.engine`): every prompt of `benchmarks/judge_prompts.toml`,
   30 s, at each seed, into `.judge-cache/` keyed by (prompt, lyrics, seed, duration, ENGINE_VERSION), so a
   re-run of an unchanged engine renders nothing. Sung prompts are rendered with lyrics and as their
   instrumental twin (same prompt and seed, no lyrics); their vocal bus (the mastered share of the mix, the
   `stems` version's vocals) is written beside the mix, and the same lines spoken by the Piper voice the
   singer starts from (the TTS output before WORLD turns it into singing).
2. Judging (`--worker`, run by step 1 under `.venv-judge/bin/python`): musicnn's `extractor` with
   `MSD_musicnn` (genres) and `MTT_musicnn` (instruments, mood, voice), the taggram averaged over time as
   musicnn's own `top_tags` does; pocketsphinx (its wheel ships the en-us model) on the vocal stems and the
   speech. Results are cached beside each WAV (`*.tags.json`, `*.asr.json`).

Then it prints, per render, the top-5 MSD genres and top MTT tags and whether the family's genre is in the
top 5; per family and overall, the share recognised; the vocal-tag ratio of each song over its
instrumental twin; and the word recall of the sung vocal stem and of the spoken lines against the lyrics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPTS_FILE = ROOT / "benchmarks" / "judge_prompts.toml"
CACHE = ROOT / ".judge-cache"
JUDGE_PYTHON = ROOT / ".venv-judge" / "bin" / "python"
DURATION = 30
MODELS = ("MSD_musicnn", "MTT_musicnn")
TOP = 5
ASR_RATE = 16000
RATIO_TARGET = 2.0  # issue 21: a song's vocal tags at least twice its instrumental twin's
# MTT tags that say "a voice is heard". The negatives ("no vocals", "no vocal", "no voice") are left out.
VOCAL_TAGS: tuple[str, ...] = (
    "vocal", "vocals", "voice", "singing", "female", "male", "woman", "man", "male vocal", "female vocal",
    "male voice", "female voice", "choir", "choral", "opera",
)


@dataclass(frozen=True)
class Family:
    """A style family as the judge scores it: which tags of which model count as "heard as this genre"."""

    name: str
    label: str
    model: str  # the model whose top 5 is checked: MSD_musicnn (genres) unless MSD has no tag for it
    tags: tuple[str, ...]  # empty: neither vocabulary names the genre, reported but not scored
    sings: bool
    prompts: tuple[str, ...]
    song: str  # the prompt rendered with lyrics and as its instrumental twin (singing families)


@dataclass(frozen=True)
class Job:
    """One render of the judge's set: a (prompt, lyrics, seed) and where its files live in the cache."""

    family: str
    prompt: str
    seed: int
    lyrics: str | None
    kind: str  # "genre" | "song" | "twin"

    @property
    def key(self) -> str:
        """Cache key: anything that changes the samples (the engine version included) changes the file."""
        from textmusic.engine import ENGINE_VERSION

        text = json.dumps([self.prompt, self.lyrics, self.seed, DURATION, ENGINE_VERSION])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def mix(self) -> Path:
        return CACHE / f"{self.key}.wav"

    @property
    def vocal(self) -> Path:
        return CACHE / f"{self.key}.vocal.wav"

    @property
    def spoken(self) -> Path:
        return CACHE / f"{self.key}.spoken.wav"

    @property
    def meta(self) -> Path:
        return CACHE / f"{self.key}.json"


def load_families(path: Path = PROMPTS_FILE) -> tuple[list[Family], str]:
    """The families, their tag mappings and prompts, and the lyrics, from the TOML beside this script (kept
    as data so the mapping table is reviewed in one place and docs/judge.md can quote it)."""
    data = tomllib.loads(path.read_text())
    families = [Family(name, f["label"], f.get("model", "MSD_musicnn"), tuple(f["tags"]), bool(f["sings"]),
                       tuple(f["prompts"]), f.get("song", f["prompts"][0]))
                for name, f in data["families"].items()]
    return families, data["lyrics"]


def jobs_for(families: list[Family], lyrics: str, seeds: list[int], per_family: int) -> list[Job]:
    """The genre prompts of each family at each seed; for a singing family its song and instrumental twin."""
    jobs: list[Job] = []
    for family in families:
        for prompt in family.prompts[:per_family]:
            jobs += [Job(family.name, prompt, seed, None, "genre") for seed in seeds]
        if family.sings:
            for seed in seeds:
                jobs += [Job(family.name, family.song, seed, lyrics, "song"),
                         Job(family.name, family.song, seed, None, "twin")]
    return jobs


# ----------------------------------------------------------------------------------------- rendering (main venv)

def sung_lines(score: Any) -> list[str]:
    """The lyric lines the render actually sings (a 30 s render reaches only the first lines): those with a
    note starting before the end, so recall is measured against the words the listener could hear."""
    end = score.duration_seconds - 0.5
    heard = {note.line for note in score.vocal if note.beat * 60.0 / score.bpm < end}
    return [line for index, line in enumerate(score.lines) if index in heard]


def render(jobs: list[Job]) -> None:
    """Render every job not in the cache with one long-lived Engine (the voice and soundfont load once)."""
    missing = [job for job in jobs if not job.meta.exists()]
    if not missing:
        return
    import numpy as np
    import soundfile

    sys.path.insert(0, str(ROOT))
    from textmusic.contract import TextToMusicRequest
    from textmusic.engine import Engine
    from textmusic.engine.vocals import VOICE_RATE

    CACHE.mkdir(exist_ok=True)
    engine = Engine()
    rate = engine.settings.sample_rate
    for number, job in enumerate(missing, 1):
        start = time.perf_counter()
        request = TextToMusicRequest(prompt=job.prompt, seed=job.seed, duration_seconds=DURATION, lyrics=job.lyrics)
        rendered = engine.render_parts(request, keep_stems=False, separate=job.lyrics is not None)
        assert rendered.master is not None
        soundfile.write(job.mix, rendered.master, rate, subtype="PCM_16")
        meta: dict[str, Any] = {"style": rendered.score.style.name, "bpm": rendered.score.bpm}
        if job.lyrics is not None:
            lines = sung_lines(rendered.score)
            meta["lines"] = lines
            vocal = rendered.parts.get("vocal")
            if vocal is not None:
                soundfile.write(job.vocal, np.asarray(vocal).mean(axis=1), rate, subtype="PCM_16")
            gap = np.zeros(int(0.4 * VOICE_RATE))
            speech = [part for line in lines for part in (engine.singer.speech(line)[0], gap)]
            if speech:
                soundfile.write(job.spoken, np.concatenate(speech).astype(np.float32), VOICE_RATE, subtype="PCM_16")
        job.meta.write_text(json.dumps(meta))
        print(f"  rendered {number}/{len(missing)} ({time.perf_counter() - start:4.1f} s) [{job.kind}] "
              f"{job.prompt!r} seed {job.seed} → {meta['style']}", flush=True)


# ------------------------------------------------------------------------------------------ judging (judge venv)

def worker(paths_file: Path) -> None:
    """Tag every listed mix with both musicnn models and transcribe every listed vocal/speech WAV, caching
    each result beside its file. Runs under .venv-judge (TensorFlow 2.15, numpy<2)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import contextlib
    import io
    import warnings

    warnings.filterwarnings("ignore")
    work = json.loads(paths_file.read_text())
    if work["tag"]:
        import tensorflow as tf
        from musicnn import extractor as musicnn_extractor

        tf.get_logger().setLevel("ERROR")
        for model in MODELS:  # musicnn's extractor swallows a failed restore (random weights): check it here
            prefix = str(Path(musicnn_extractor.__file__).parent / model) + "/"  # the prefix extractor restores
            if not tf.compat.v1.train.NewCheckpointReader(prefix).get_variable_to_shape_map():
                sys.exit(f"musicnn: no weights in {prefix}")
        for number, path in enumerate(work["tag"], 1):
            result = {}
            for model in MODELS:
                with contextlib.redirect_stdout(io.StringIO()):
                    taggram, labels = musicnn_extractor.extractor(path, model=model, extract_features=False)
                mean = taggram.mean(axis=0)
                result[model] = {label: round(float(score), 4) for label, score in zip(labels, mean, strict=True)}
            Path(path + ".tags.json").write_text(json.dumps(result))
            print(f"  tagged {number}/{len(work['tag'])}", flush=True)
    if work["asr"]:
        import librosa
        import numpy as np
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=ASR_RATE, logfn=os.devnull)
        for path in work["asr"]:
            audio, _ = librosa.load(path, sr=ASR_RATE, mono=True)
            peak = float(np.abs(audio).max()) or 1.0
            pcm = (audio / peak * 0.9 * 32767).astype(np.int16).tobytes()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            Path(path + ".asr.json").write_text(json.dumps({"text": hyp.hypstr if hyp else ""}))
        print(f"  transcribed {len(work['asr'])}", flush=True)


def judge(jobs: list[Job]) -> None:
    """Run the worker under the judge venv on whatever is not judged yet."""
    tag = [str(job.mix) for job in jobs if not Path(str(job.mix) + ".tags.json").exists()]
    asr = [str(p) for job in jobs if job.kind == "song" for p in (job.vocal, job.spoken)
           if p.exists() and not Path(str(p) + ".asr.json").exists()]
    if not tag and not asr:
        return
    if not JUDGE_PYTHON.exists():
        sys.exit(f"{JUDGE_PYTHON} is missing: run `make judge` (it builds the judge venv)")
    work = CACHE / "work.json"
    work.write_text(json.dumps({"tag": tag, "asr": asr}))
    subprocess.run([str(JUDGE_PYTHON), __file__, "--worker", str(work)], check=True, cwd=ROOT)


# ------------------------------------------------------------------------------------------------------ report

def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def recall(reference: list[str], heard: list[str]) -> float:
    """Share of the lyric's words the recogniser heard (bag of words, each heard word used once): order-free
    because a sung line's timing differs from speech, and a dropped word should cost one word, not a line."""
    if not reference:
        return float("nan")
    have = Counter(heard)
    hits = 0
    for word in reference:
        if have[word]:
            have[word] -= 1
            hits += 1
    return hits / len(reference)


def tags_of(job: Job) -> dict[str, dict[str, float]]:
    return json.loads(Path(str(job.mix) + ".tags.json").read_text())


def top(scores: dict[str, float], n: int = TOP) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda item: -item[1])[:n]


def vocal_mass(job: Job) -> float:
    mtt = tags_of(job)["MTT_musicnn"]
    return sum(mtt[tag] for tag in VOCAL_TAGS)


def report(families: list[Family], jobs: list[Job]) -> dict[str, Any]:
    """Print the tables; return the figures (written to .judge-cache/last.json for comparisons)."""
    by_name = {family.name: family for family in families}
    figures: dict[str, Any] = {"families": {}, "vocal": [], "recall": []}
    print("\n== Genre: MSD top 5 (family's tags marked *) and MTT top 5, per render ==")
    hits: dict[str, list[bool]] = {}
    first_with: dict[str, Job] = {}  # audio digest → the first render that sounded so
    distinct: dict[str, set[str]] = {}
    for job in (j for j in jobs if j.kind == "genre"):
        family = by_name[job.family]
        tags = tags_of(job)
        style = json.loads(job.meta.read_text())["style"]
        digest = hashlib.sha1(job.mix.read_bytes()).hexdigest()
        same = first_with.setdefault(digest, job)
        distinct.setdefault(family.name, set()).add(digest)
        top_checked = [label for label, _ in top(tags[family.model])]
        hit = bool(set(top_checked) & set(family.tags))
        if family.tags:
            hits.setdefault(family.name, []).append(hit)
        mark = ("yes" if hit else "NO ") if family.tags else "n/a"
        msd = ", ".join(f"{'*' if label in family.tags else ''}{label} {score:.2f}"
                        for label, score in top(tags["MSD_musicnn"]))
        mtt = ", ".join(f"{'*' if family.model == 'MTT_musicnn' and label in family.tags else ''}{label} {score:.2f}"
                        for label, score in top(tags["MTT_musicnn"]))
        twin = f" = same audio as {same.prompt[:30]!r} s{same.seed}" if same is not job else ""
        print(f"{mark} {family.name:<10} s{job.seed} {job.prompt[:44]:<44} [{style}]{twin}")
        print(f"      MSD: {msd}\n      MTT: {mtt}")
    print("\n== Recognised per family (genre in the top 5) ==")
    total_hits = total = 0
    for family in families:
        got = hits.get(family.name, [])
        if not family.tags:
            print(f"  {family.label:<32} not scored (no tag for it in MSD or MTT); "
                  f"{len(distinct.get(family.name, ()))} distinct audio")
            continue
        if not got:
            continue
        total_hits += sum(got)
        total += len(got)
        figures["families"][family.name] = [sum(got), len(got), len(distinct[family.name])]
        print(f"  {family.label:<32} {sum(got)} of {len(got)}  ({len(distinct[family.name])} distinct audio)")
    print(f"  {'overall':<32} {total_hits} of {total} renders ({100 * total_hits / max(total, 1):.0f} %); "
          f"renders with the same audio as another are marked '= same audio as' above")
    figures["overall"] = [total_hits, total]

    songs = [job for job in jobs if job.kind == "song"]
    if songs:
        print(f"\n== Vocal tags (MTT: {', '.join(VOCAL_TAGS)}): song over instrumental twin, "
              f"target ≥ {RATIO_TARGET:g} ==")
        print(f"  {'family':<10} {'seed':>4} {'song':>6} {'twin':>6} {'ratio':>6}")
        for job in songs:
            twin = Job(job.family, job.prompt, job.seed, None, "twin")
            sung, plain = vocal_mass(job), vocal_mass(twin)
            ratio = sung / plain if plain else float("inf")
            figures["vocal"].append([job.family, job.seed, sung, plain, ratio])
            print(f"  {job.family:<10} {job.seed:>4} {sung:6.2f} {plain:6.2f} {ratio:6.2f} "
                  f"{'ok' if ratio >= RATIO_TARGET else 'LOW'}")
        passing = {f for f in {v[0] for v in figures["vocal"]}
                   if all(v[4] >= RATIO_TARGET for v in figures["vocal"] if v[0] == f)}
        sung_families = {v[0] for v in figures["vocal"]}
        print(f"  families at ≥ {RATIO_TARGET:g} on every seed: {len(passing)} of {len(sung_families)}")

        print("\n== Word recall (pocketsphinx en-us) of the lyric lines sung in the 30 s: vocal stem vs spoken ==")
        print(f"  {'family':<10} {'seed':>4} {'words':>5} {'sung':>6} {'spoken':>6}  sung heard as")
        sums = [0.0, 0.0, 0]
        for job in songs:
            lines = json.loads(job.meta.read_text()).get("lines", [])
            reference = words(" ".join(lines))
            heard = {name: words(json.loads(Path(str(path) + ".asr.json").read_text())["text"])
                     if Path(str(path) + ".asr.json").exists() else []
                     for name, path in (("sung", job.vocal), ("spoken", job.spoken))}
            sung, spoken = recall(reference, heard["sung"]), recall(reference, heard["spoken"])
            figures["recall"].append([job.family, job.seed, len(reference), sung, spoken])
            if reference:
                sums[0] += sung * len(reference)
                sums[1] += spoken * len(reference)
                sums[2] += len(reference)
            print(f"  {job.family:<10} {job.seed:>4} {len(reference):>5} {sung:6.0%} {spoken:6.0%}  "
                  f"{' '.join(heard['sung'])[:60]!r}")
        if sums[2]:
            print(f"  {'all':<10} {'':>4} {sums[2]:>5} {sums[0] / sums[2]:6.0%} {sums[1] / sums[2]:6.0%}")
            figures["recall_overall"] = [sums[0] / sums[2], sums[1] / sums[2], sums[2]]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", help="comma-separated family names (see judge_prompts.toml)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="1 seed and 1 prompt per family, for iteration")
    parser.add_argument("--prompts-per-family", type=int, default=99)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    sys.path.insert(0, str(ROOT))
    families, lyrics = load_families()
    if args.families:
        wanted = set(args.families.split(","))
        if unknown := wanted - {f.name for f in families}:
            sys.exit(f"unknown families: {', '.join(sorted(unknown))}")
        families = [f for f in families if f.name in wanted]
    seeds = args.seeds[:1] if args.quick else args.seeds
    per_family = 1 if args.quick else args.prompts_per_family
    jobs = jobs_for(families, lyrics, seeds, per_family)
    from textmusic.engine import ENGINE_VERSION

    print(f"judge: {len(jobs)} renders of {DURATION} s (engine {ENGINE_VERSION}), cache {CACHE}", flush=True)
    start = time.perf_counter()
    render(jobs)
    rendered = time.perf_counter()
    judge(jobs)
    judged = time.perf_counter()
    figures = report(families, jobs)
    figures.update(engine_version=ENGINE_VERSION, seeds=seeds, renders=len(jobs))
    (CACHE / "last.json").write_text(json.dumps(figures, indent=1))
    print(f"\ntime: render {rendered - start:.0f} s, judge {judged - rendered:.0f} s, "
          f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
