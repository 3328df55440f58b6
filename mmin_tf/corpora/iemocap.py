"""IEMOCAP (Busso et al., 2008): the reader of the raw release, `IEMOCAP_full_release/`.

Obtain the corpus from USC SAIL (https://sail.usc.edu/iemocap/, licence agreement). The paper
(MMIN, §4.1 and Table 2) uses four classes, 5531 utterances: happy 1636 (`hap` + `exc`), anger
1103, sadness 1084, neutral 1708; 5 sessions x 2 actors, 10 folds.

Release layout read here (one `Session<n>` per session; sources below):

    Session1/dialog/EmoEvaluation/Ses01F_impro01.txt     one file per dialog: labels and spans
    Session1/dialog/transcriptions/Ses01F_impro01.txt    one file per dialog: the text
    Session1/dialog/wav/Ses01F_impro01.wav               the dialog's audio (2 channels)
    Session1/dialog/avi/DivX/Ses01F_impro01.avi          the dialog's video (both actors)
    Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav   one wav per utterance

Rules, each with where it comes from:

1. Dialogs. A dialog is a file `dialog/EmoEvaluation/Ses<nn><F|M>_<name>.txt`; its name is
   `Ses<nn><F|M>_impro<kk>[a-z]` or `Ses<nn><F|M>_script<kk>_<k>[a-z]` (improvised and scripted;
   the letter suffixes exist: `Ses03M_impro05a`, `Ses03M_impro05b`, `Ses05M_script01_1b`, seen in
   public IEMOCAP readers' dialog lists). Other entries of `EmoEvaluation/` (its `Categorical/`,
   `Attribute/`, `Self-evaluation/` sub-directories, AppleDouble `._*` files some copies carry)
   are not dialog files and are not read. Layout: CXianRen/AMST `Doc/dataset/IEMOCAP.md`.
2. Utterances, spans, labels. Each turn of an evaluation file starts with one summary line
   `[start - end]<TAB>utterance_id<TAB>label<TAB>[V, A, D]` (e.g. `[6.2901 - 8.2357]
   Ses01F_impro01_F000 neu [2.5000, 2.5000, 2.5000]`), followed by per-evaluator lines
   (`C-E1:`, `A-F1:`, ...); the file's first line is a `%` header. (CXianRen/AMST
   `Doc/dataset/IEMOCAP.md`; Rongjiehuang/GenerSpeech `exp/data/IEMOCAP/collect_emotion.py`.)
   A line starting with `[` must parse as a summary line, every other non-blank line must be a
   header or evaluator line, else `DataError`. `start`/`end` are seconds in the dialog's media.
   The utterance id is `<dialog>_<F|M><nnn>`.
3. Speaker and group. The speaking actor is the gender letter of the id's last part
   (`Ses01F_impro01_M012` is spoken by `Ses01M`); the letter after the session number in the
   dialog name is the actor who wore the motion-capture markers, not the speaker. Speaker =
   `Ses<nn><F|M>` of the speaking actor, group = `Ses<nn>` (10 speakers, 5 groups).
4. Classes. `label_map` (default: `hap`, `exc` -> happy; `ang` -> anger; `sad` -> sadness;
   `neu` -> neutral, the paper's setup after Xu et al. 2019 / Liang et al. 2020); every other label
   (`fru`, `xxx`, `sur`, `fea`, `oth`, `dis`) is dropped and counted per label. On the full
   release the evaluation files hold 10039 turns: neu 1708, ang 1103, sad 1084, exc 1041,
   hap 595, fru 1849, xxx 2507, sur 107, fea 40, oth 3, dis 2 (tsagketas/demokritos-ml-project
   `datasets/iemocap/README.md`), so hap + exc = 1636 as in the paper. The four classes per
   session are 1085, 1023, 1151, 1031, 1241 (the fold sizes of emotion2vec's IEMOCAP recipe and
   of scripts derived from it); `SESSION_COUNTS` records them. On the full release with the
   paper's labels the reader logs whether its counts match both.
5. Transcript. `dialog/transcriptions/<dialog>.txt` lines `<id> [start-end]: text`
   (e.g. `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`). Handled quirks, counted:
   turns `<dialog>_<F|M>XX<k>` (Session 5 has them) are in the transcripts but not evaluated:
   `unevaluated_transcript_turns`; lines without an utterance id (not starting with `Ses`):
   `transcript_lines_without_id` (the MMIN authors' own cutting script, AIM3-RUC/MEmoBert
   `preprocess/iemocap/cut_video.sh`, skips such lines); a kept utterance with no transcript
   line or an empty text gets no transcript: `without_transcript`. Any other id not
   in the dialog's evaluation file is a `DataError` ("transcript line for an unknown
   utterance"), as is a line that starts with an id but does not parse.
6. Audio. `sentences/wav/<dialog>/<id>.wav` is the utterance's own wav (ddlBoJack/emotion2vec
   `iemocap_downstream/scripts/iemocap_manifest.py`); `dialog/wav/<dialog>.wav` is the whole
   dialog, two channels (public readers split or average its two channels). See "Audio and the
   span" below for which one the record points at.
7. Video. `dialog/avi/DivX/<dialog>.avi` holds the whole dialog with both actors side by side;
   the utterance is the span of rule 2 (AIM3-RUC/MEmoBert `preprocess/iemocap/cut_video.sh`
   cuts sentence videos from this file with the transcript spans). The face region: that
   script's rule is "the one who wears mocap is put in the left": if the speaking actor's letter
   equals the dialog's letter (`Ses01F_*_F000`, `Ses01M_*_M000`) the left half, else the right
   half (ffmpeg `crop=iw/2:ih:0:0` / `crop=iw/2:ih:iw/2:0`). Settings `mocap_actor_region` and
   `other_actor_region` (defaults: left and right halves). Not verified on the corpus here.
8. Bad input raises `DataError` naming the file and line or the utterance: a missing corpus or
   session directory, a missing `EmoEvaluation` / `transcriptions` directory or file, a line that
   does not parse, an id of another dialog or session, a repeated utterance id, a missing wav or
   avi. No utterance is skipped without being counted; counts are logged and returned.

Audio and the span. The sentence wav holds the utterance alone, the dialog avi the whole dialog:
by default (`IemocapAudio.SENTENCE`, as the original's acoustic features) a record points at the
sentence wav, read whole, and at the dialog avi with the utterance's span as `video_start` /
`video_end`. `IemocapAudio.DIALOG` points at the dialog wav (two channels, both actors'
microphones, which extraction mixes down) with the span as `start` / `end` instead.
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

CORPUS = "IEMOCAP"
LABEL_NAMES = ("happy", "anger", "sadness", "neutral")
# The paper's four classes (§4.1): excited merged into happy.
PAPER_LABEL_MAP = (("hap", "happy"), ("exc", "happy"), ("ang", "anger"), ("sad", "sadness"), ("neu", "neutral"))
PAPER_COUNTS = {"happy": 1636, "anger": 1103, "sadness": 1084, "neutral": 1708}
SESSION_COUNTS = {"Ses01": 1085, "Ses02": 1023, "Ses03": 1151, "Ses04": 1031, "Ses05": 1241}
SESSIONS = (1, 2, 3, 4, 5)
LEFT_HALF = FaceRegion(0.0, 0.0, 0.5, 1.0)
RIGHT_HALF = FaceRegion(0.5, 0.0, 1.0, 1.0)

# Rule names counted in `ReadCounts.rule_counts`.
UNEVALUATED_TRANSCRIPT_TURNS = "unevaluated_transcript_turns"
TRANSCRIPT_LINES_WITHOUT_ID = "transcript_lines_without_id"
WITHOUT_TRANSCRIPT = "without_transcript"

_DIALOG = re.compile(r"^Ses(?P<session>\d{2})(?P<mocap>[FM])_(?:impro\d{2}[a-z]?|script\d{2}_\d[a-z]?)$")
_UTTERANCE = re.compile(r"^(?P<dialog>.+)_(?P<gender>[FM])(?P<number>\d{3})$")
_UNEVALUATED_TURN = re.compile(r"^(?P<dialog>.+)_[FM]XX\d+$")
_NUMBER = r"\d+(?:\.\d+)?"
_SUMMARY = re.compile(
    rf"^\[(?P<start>{_NUMBER})\s*-\s*(?P<end>{_NUMBER})\]\s+(?P<id>\S+)\s+(?P<label>\S+)\s+"
    rf"\[{_NUMBER},\s*{_NUMBER},\s*{_NUMBER}\]\s*$"
)
_EVALUATOR = re.compile(r"^[A-Z]+-[A-Za-z0-9]+:")
_TRANSCRIPT = re.compile(rf"^(?P<id>\S+)\s+\[{_NUMBER}-{_NUMBER}\]:(?P<text>.*)$")


class IemocapAudio(enum.Enum):
    """Which wav a record points at (see the module docstring, "Audio and the span")."""

    SENTENCE = "sentence"  # sentences/wav/<dialog>/<id>.wav, read whole (the original)
    DIALOG = "dialog"  # dialog/wav/<dialog>.wav with the utterance's span


@dataclasses.dataclass(frozen=True)
class IemocapSettings:
    """What `read_iemocap` selects and how it fills the records.

    Attributes:
        sessions: session numbers to read (1..5); each `Session<n>` directory must exist.
        label_map: `(release label, class name)` pairs; labels not listed are dropped and counted.
        label_names: the class names, in label-index order.
        audio: which wav the records point at, or None for no audio.
        include_video: point the records at the dialog avi with the utterance's span.
        include_transcript: read the transcriptions into the records.
        mocap_actor_region: the face region of the actor who wore the markers (the dialog name's
            letter), by the rule of AIM3-RUC/MEmoBert `cut_video.sh`; None: the whole frame.
        other_actor_region: the face region of the other actor; None: the whole frame.
    """

    sessions: tuple[int, ...] = SESSIONS
    label_map: tuple[tuple[str, str], ...] = PAPER_LABEL_MAP
    label_names: tuple[str, ...] = LABEL_NAMES
    audio: Optional[IemocapAudio] = IemocapAudio.SENTENCE
    include_video: bool = True
    include_transcript: bool = True
    mocap_actor_region: Optional[FaceRegion] = LEFT_HALF
    other_actor_region: Optional[FaceRegion] = RIGHT_HALF

    def __post_init__(self):
        sessions = tuple(self.sessions)
        if not sessions or len(set(sessions)) != len(sessions) or not all(
                isinstance(number, int) and number in SESSIONS for number in sessions):
            raise ValueError(
                f"`sessions` must be distinct session numbers among {SESSIONS}. Received: sessions={self.sessions}")
        reading.validate_label_map(self.label_map, self.label_names)
        if self.audio is not None and not isinstance(self.audio, IemocapAudio):
            raise TypeError(f"`audio` must be an IemocapAudio or None. Received: audio={self.audio!r}")
        for name in ("mocap_actor_region", "other_actor_region"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, FaceRegion):
                raise TypeError(f"`{name}` must be a FaceRegion or None. Received: {name}={value!r}")
        if self.audio is None and not self.include_video and not self.include_transcript:
            raise ValueError("The settings select no modality: set `audio`, `include_video` or `include_transcript`.")


def read_iemocap(corpus_dir: str, settings: IemocapSettings = IemocapSettings()) -> reading.CorpusReading:
    """Reads the release at `corpus_dir` (the `IEMOCAP_full_release` directory).

    Only reads the release: evaluation and transcription files, and the existence of the media the
    records point at. Logs the counts per class, per session, per dropped label and per rule.

    Returns:
        A `CorpusReading`: the records in session, dialog-name and file order, and their counts.

    Raises:
        DataError: naming the file and line or the utterance, for the bad inputs of the module
            docstring's rule 8.
    """
    if not os.path.isdir(corpus_dir):
        raise DataError(f"IEMOCAP release directory {corpus_dir} not found")
    label_map = dict(settings.label_map)
    counts = reading.CountsBuilder(CORPUS, settings.label_names)
    records: list[MediaRecord] = []
    seen: dict[str, str] = {}
    for number in settings.sessions:
        session_dir = os.path.join(corpus_dir, f"Session{number}")
        if not os.path.isdir(session_dir):
            raise DataError(
                f"IEMOCAP session directory {session_dir} not found (settings.sessions={settings.sessions})")
        for dialog, evaluation_path in _dialogs(session_dir, number):
            turns = _read_evaluation(evaluation_path, dialog, seen)
            transcripts = (_read_transcripts(session_dir, dialog, turns, counts)
                           if settings.include_transcript else {})
            for turn in turns:
                label = label_map.get(turn.raw_label)
                if label is None:
                    counts.drop_label(turn.raw_label)
                    continue
                records.append(_record(session_dir, dialog, turn, label, transcripts, settings, counts))
                counts.keep(label, records[-1].group)
    result = reading.CorpusReading(records=tuple(records), counts=counts.build())
    full_release = tuple(settings.sessions) == SESSIONS and settings.label_map == PAPER_LABEL_MAP
    if full_release:
        reading.log_counts(result.counts, PAPER_COUNTS, SESSION_COUNTS)
    else:
        reading.log_counts(result.counts)
    return result


@dataclasses.dataclass(frozen=True)
class _Turn:
    utterance_id: str
    gender: str
    start: float
    end: float
    raw_label: str
    source: str


def _dialogs(session_dir: str, number: int) -> list[tuple[str, str]]:
    evaluation_dir = os.path.join(session_dir, "dialog", "EmoEvaluation")
    if not os.path.isdir(evaluation_dir):
        raise DataError(f"IEMOCAP evaluation directory {evaluation_dir} not found")
    dialogs = []
    for name in sorted(os.listdir(evaluation_dir)):
        path = os.path.join(evaluation_dir, name)
        if not (name.startswith("Ses") and name.endswith(".txt") and os.path.isfile(path)):
            continue  # rule 1: sub-directories and `._*` files are not dialog files
        dialog = name[:-len(".txt")]
        match = _DIALOG.match(dialog)
        if match is None:
            raise DataError(
                f"IEMOCAP evaluation file {path}: {dialog!r} is not a dialog name "
                "Ses<nn><F|M>_impro<kk>[a-z] or Ses<nn><F|M>_script<kk>_<k>[a-z]")
        if int(match["session"]) != number:
            raise DataError(f"IEMOCAP evaluation file {path}: dialog {dialog!r} is not of session {number}")
        dialogs.append((dialog, path))
    if not dialogs:
        raise DataError(f"IEMOCAP evaluation directory {evaluation_dir} holds no dialog file Ses*.txt")
    return dialogs


def _read_evaluation(path: str, dialog: str, seen: dict[str, str]) -> list[_Turn]:
    turns = []
    for line_number, line in enumerate(_lines(path, "evaluation"), start=1):
        text = line.strip()
        where = f"IEMOCAP evaluation file {path} line {line_number}"
        if not text or text.startswith("%") or _EVALUATOR.match(text):
            continue  # rule 2: blank, header and per-evaluator lines
        match = _SUMMARY.match(text)
        if match is None:
            raise DataError(
                f"{where} does not parse: expected '[start - end]<TAB>utterance_id<TAB>label<TAB>[V, A, D]' "
                f"or an evaluator line such as 'C-E1: ...'. Received: {text!r}")
        utterance_id = match["id"]
        parts = _UTTERANCE.match(utterance_id)
        if parts is None or parts["dialog"] != dialog:
            raise DataError(f"{where}: utterance id {utterance_id!r} is not <dialog>_<F|M><nnn> of dialog {dialog!r}")
        if utterance_id in seen:
            raise DataError(f"{where}: utterance {utterance_id!r} is repeated (first at {seen[utterance_id]})")
        seen[utterance_id] = f"{path} line {line_number}"
        turns.append(_Turn(
            utterance_id=utterance_id, gender=parts["gender"], start=float(match["start"]),
            end=float(match["end"]), raw_label=match["label"], source=f"{path} line {line_number}",
        ))
    return turns


def _read_transcripts(
        session_dir: str, dialog: str, turns: list[_Turn], counts: reading.CountsBuilder) -> dict[str, str]:
    path = os.path.join(session_dir, "dialog", "transcriptions", f"{dialog}.txt")
    if not os.path.isfile(path):
        raise DataError(f"IEMOCAP transcription file {path} not found (dialog {dialog!r})")
    evaluated = {turn.utterance_id for turn in turns}
    texts: dict[str, str] = {}
    for line_number, line in enumerate(_lines(path, "transcription"), start=1):
        text = line.strip()
        if not text:
            continue
        where = f"IEMOCAP transcription file {path} line {line_number}"
        if not text.startswith("Ses"):
            counts.rule(TRANSCRIPT_LINES_WITHOUT_ID)
            continue
        match = _TRANSCRIPT.match(text)
        if match is None:
            raise DataError(f"{where} does not parse: expected '<utterance_id> [start-end]: text'. Received: {text!r}")
        utterance_id = match["id"]
        if utterance_id not in evaluated:
            turn = _UNEVALUATED_TURN.match(utterance_id)
            if turn is not None and turn["dialog"] == dialog:
                counts.rule(UNEVALUATED_TRANSCRIPT_TURNS)
                continue
            raise DataError(
                f"{where}: transcript line for an unknown utterance {utterance_id!r}: it is not in the "
                f"dialog's evaluation file")
        if utterance_id in texts:
            raise DataError(f"{where}: utterance {utterance_id!r} has a second transcript line")
        texts[utterance_id] = match["text"].strip()
    return texts


def _lines(path: str, kind: str) -> list[str]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig").split("\n")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(f"IEMOCAP {kind} file {path} line {line} is not UTF-8 text ({error.reason})") from None


def _record(session_dir, dialog, turn, label, transcripts, settings, counts) -> MediaRecord:
    session = dialog[:len("Ses00")]
    mocap_letter = dialog[len("Ses00")]
    where = f"IEMOCAP utterance {turn.utterance_id!r} ({turn.source})"
    audio = None
    if settings.audio is IemocapAudio.SENTENCE:
        audio = os.path.join(session_dir, "sentences", "wav", dialog, f"{turn.utterance_id}.wav")
    elif settings.audio is IemocapAudio.DIALOG:
        audio = os.path.join(session_dir, "dialog", "wav", f"{dialog}.wav")
    if audio is not None and not os.path.isfile(audio):
        raise DataError(f"{where}: wav {audio} not found")
    video = None
    face_region = None
    if settings.include_video:
        video = os.path.join(session_dir, "dialog", "avi", "DivX", f"{dialog}.avi")
        if not os.path.isfile(video):
            raise DataError(f"{where}: video {video} not found")
        face_region = settings.mocap_actor_region if turn.gender == mocap_letter else settings.other_actor_region
    transcript = None
    if settings.include_transcript:
        transcript = transcripts.get(turn.utterance_id) or None
        if transcript is None:
            counts.rule(WITHOUT_TRANSCRIPT)
    dialog_audio = settings.audio is IemocapAudio.DIALOG
    separate_video_span = settings.include_video and not dialog_audio
    return MediaRecord(
        utterance_id=turn.utterance_id, speaker=f"{session}{turn.gender}", group=session, label=label,
        audio=audio, transcript=transcript, video=video,
        start=turn.start if dialog_audio else None, end=turn.end if dialog_audio else None,
        video_start=turn.start if separate_video_span else None, video_end=turn.end if separate_video_span else None,
        face_region=face_region, source=turn.source,
    )
