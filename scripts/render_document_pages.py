#!/usr/bin/env python3
"""Render synthetic scanned document pages for training pconv on paper, print and ink.

    python scripts/render_document_pages.py OUT_DIR --count N --seed S [--size 1024]

pconv's training photographs contain no paper, text, halftone or brush strokes. This script
renders crops of printed pages, laid out as real pages are, in Latin, Hangul, Chinese
characters and Japanese kana with fonts from Debian packages:

* horizontal pages: one to three columns of paragraphs (justified or ragged, first-line
  indents), headings, running heads with a rule, page numbers, sometimes a halftone picture
  with a caption, a tinted box or a ruled table;
* vertical pages in the manner of old Korean, Chinese and Japanese books: columns read top to
  bottom, right to left, inside a single or double frame with rules between the columns,
  sometimes with commentary in two small sub-columns and a red seal;

on paper that looks scanned: off-white to yellowed base colour, mottle and grain, sometimes
fibres, yellowing toward the page edges, faint stains and foxing, bleed-through of the other
side, uneven lighting or a gutter shadow, slightly blurred and spread ink in near-black,
faded brown or blue, and sometimes a grey scan. Stains belong to the clean page: the damage
that pconv learns to detect and fill (scratches, holes, creases) is added later by its damage
synthesiser, never here.

Text is pseudo-text drawn from built-in lists of frequent characters and words (nothing is
downloaded). Every page is drawn from its own seed, derived from (--seed, page index), so a set
is reproducible and can be extended: ``--count 800`` after ``--count 400`` with the same seed
writes 400 new pages and leaves the first 400 as they are (existing files are skipped).
``OUT_DIR/SOURCES.csv`` records every page's seed, script, layout, fonts, font packages and
font licences.

Fonts are found by their file names under /usr/share/fonts (falling back to ``fc-list``). On
Debian or Ubuntu:

    apt-get install -y fonts-noto-cjk fonts-nanum fonts-unfonts-core fonts-ipafont \
        fonts-dejavu-core

Needs only Pillow and numpy.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_ROOT = Path("/usr/share/fonts")
JPEG_QUALITY = 95
SCRIPTS = ("latin", "hangul", "hanzi", "japanese")
APT_PACKAGES = ("fonts-noto-cjk", "fonts-nanum", "fonts-unfonts-core", "fonts-ipafont",
                "fonts-dejavu-core")

# ---------------------------------------------------------------------------------- fonts

# Licences as the packages' /usr/share/doc/<package>/copyright files state them
# (fonts-noto-cjk 1:20220127, fonts-nanum 20200506, fonts-unfonts-core 1:1.0.2-080608,
# fonts-ipafont-gothic/-mincho 00303, fonts-dejavu-core 2.37).
LICENCES = {
    "fonts-noto-cjk": "OFL-1.1 (SIL Open Font License 1.1)",
    "fonts-nanum": "OFL-1.1 (SIL Open Font License 1.1)",
    "fonts-unfonts-core": "GPL-2 (no font exception stated in the Debian copyright file)",
    "fonts-ipafont": "IPA Font License Agreement v1.0",
    "fonts-dejavu-core": "Bitstream-Vera (DejaVu changes public domain)",
}


@dataclass(frozen=True)
class Face:
    name: str  # short name recorded in SOURCES.csv
    file: str  # file name under /usr/share/fonts (searched recursively)
    index: int  # face index in a .ttc collection
    package: str
    serif: bool = True
    bold: bool = False
    italic: bool = False
    weight: float = 1.0  # how often it is drawn, relative to the other faces of its script
    vforms: bool = False  # has the vertical presentation forms of 。、，「」
    path: str | None = None  # filled in when found; None with file "" is Pillow's own font

    @property
    def licence(self) -> str:
        return LICENCES.get(self.package, "Pillow's built-in font (Aileron, CC0-1.0)")


def _noto(family: str, region: int, bold: bool, weight: float) -> Face:
    # Face order in the Noto CJK collections: 0 JP, 1 KR, 2 SC, 3 TC, 4 HK.
    region_name = ("JP", "KR", "SC", "TC", "HK")[region]
    style = "Bold" if bold else "Regular"
    return Face(f"Noto {family} CJK {region_name} {style}", f"Noto{family}CJK-{style}.ttc",
                region, "fonts-noto-cjk", serif=family == "Serif", bold=bold, weight=weight,
                vforms=True)


# Per script: body faces. Serif faces (Myeongjo/Batang/Mincho/Song) are drawn most often,
# because most printed books use them.
FACES: dict[str, tuple[Face, ...]] = {
    "latin": (
        Face("DejaVu Serif", "DejaVuSerif.ttf", 0, "fonts-dejavu-core", weight=3),
        Face("DejaVu Serif Bold", "DejaVuSerif-Bold.ttf", 0, "fonts-dejavu-core", bold=True),
        Face("DejaVu Serif Italic", "DejaVuSerif-Italic.ttf", 0, "fonts-dejavu-core",
             italic=True, weight=0.5),
        Face("DejaVu Serif Condensed", "DejaVuSerifCondensed.ttf", 0, "fonts-dejavu-core",
             weight=2),
        Face("DejaVu Serif Condensed Bold", "DejaVuSerifCondensed-Bold.ttf", 0,
             "fonts-dejavu-core", bold=True, weight=0.5),
        Face("DejaVu Sans", "DejaVuSans.ttf", 0, "fonts-dejavu-core", serif=False),
        Face("DejaVu Sans Bold", "DejaVuSans-Bold.ttf", 0, "fonts-dejavu-core", serif=False,
             bold=True, weight=0.5),
    ),
    "hangul": (
        Face("NanumMyeongjo", "NanumMyeongjo.ttf", 0, "fonts-nanum", weight=3),
        Face("NanumMyeongjo Bold", "NanumMyeongjoBold.ttf", 0, "fonts-nanum", bold=True),
        Face("UnBatang", "UnBatang.ttf", 0, "fonts-unfonts-core", weight=3, vforms=True),
        Face("UnBatang Bold", "UnBatangBold.ttf", 0, "fonts-unfonts-core", bold=True,
             vforms=True),
        Face("UnGungseo", "UnGungseo.ttf", 0, "fonts-unfonts-core", weight=1),
        Face("UnPilgi", "UnPilgi.ttf", 0, "fonts-unfonts-core", weight=0.5),
        Face("NanumGothic", "NanumGothic.ttf", 0, "fonts-nanum", serif=False),
        Face("UnDotum", "UnDotum.ttf", 0, "fonts-unfonts-core", serif=False),
        _noto("Serif", 1, False, 2),
        _noto("Serif", 1, True, 0.5),
        _noto("Sans", 1, False, 0.5),
    ),
    "hanzi": (
        _noto("Serif", 3, False, 3),
        _noto("Serif", 3, True, 0.5),
        _noto("Serif", 2, False, 2),
        _noto("Serif", 2, True, 0.5),
        _noto("Serif", 4, False, 1),
        _noto("Sans", 3, False, 0.5),
        _noto("Sans", 2, False, 0.5),
    ),
    "japanese": (
        Face("IPAMincho", "ipam.ttf", 0, "fonts-ipafont", weight=3),
        Face("IPAPMincho", "ipamp.ttf", 0, "fonts-ipafont", weight=1),
        Face("IPAGothic", "ipag.ttf", 0, "fonts-ipafont", serif=False),
        _noto("Serif", 0, False, 2),
        _noto("Serif", 0, True, 0.5),
        _noto("Sans", 0, False, 0.5),
    ),
}
# Korean text mixed with Hanja needs a face that has both; Noto CJK KR has every character.
HANJA_FACES = (_noto("Serif", 1, False, 1), _noto("Serif", 1, True, 0.3))
INSTALL_HINT = {
    "latin": "apt-get install -y fonts-dejavu-core",
    "hangul": "apt-get install -y fonts-nanum fonts-unfonts-core fonts-noto-cjk",
    "hanzi": "apt-get install -y fonts-noto-cjk",
    "japanese": "apt-get install -y fonts-ipafont fonts-noto-cjk",
}


@lru_cache(maxsize=1)
def _font_files() -> dict[str, str]:
    """File name -> path of every font under /usr/share/fonts (or known to fc-list)."""
    found: dict[str, str] = {}
    if FONT_ROOT.is_dir():
        for dirpath, _dirs, files in os.walk(FONT_ROOT):
            for name in files:
                found.setdefault(name, os.path.join(dirpath, name))
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", "-f", "%{file}\n"], capture_output=True,
                                 text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in sorted(set(out.splitlines())):
            found.setdefault(os.path.basename(line), line)
    return found


def find_fonts(scripts: tuple[str, ...] = SCRIPTS) -> tuple[dict[str, list[Face]], list[str]]:
    """The installed faces of each script, and one line per script that has none."""
    files = _font_files()
    catalog: dict[str, list[Face]] = {}
    missing: list[str] = []
    for script in scripts:
        faces = [Face(**{**f.__dict__, "path": files[f.file]}) for f in FACES[script]
                 if f.file in files]
        if faces:
            catalog[script] = faces
        else:
            missing.append(f"no {script} fonts found: {INSTALL_HINT[script]}")
    if "hangul" in catalog:
        catalog["hanja"] = [Face(**{**f.__dict__, "path": files[f.file]}) for f in HANJA_FACES
                            if f.file in files]
    return catalog, missing


def builtin_latin_face() -> Face:
    """Pillow's own font: Latin pages even without any installed font (tests)."""
    return Face("Pillow default", "", 0, "pillow", path=None, weight=1)


@lru_cache(maxsize=256)
def load_font(face: Face, size: int) -> ImageFont.FreeTypeFont:
    size = max(6, int(size))
    if face.path is None:
        return ImageFont.load_default(size)
    # BASIC layout: the same pixels with and without libraqm installed.
    return ImageFont.truetype(face.path, size, index=face.index,
                              layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=16384)
def _token(font: ImageFont.FreeTypeFont, text: str, anchor: str) -> tuple[Image.Image, int, int]:
    """A rendered character or word and its offset from the anchor point (reused: fast)."""
    x0, y0, x1, y1 = font.getbbox(text, anchor=anchor)
    img = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)), 0)
    ImageDraw.Draw(img).text((-x0, -y0), text, font=font, fill=255, anchor=anchor)
    return img, x0, y0


def put(layer: Image.Image, xy: tuple[float, float], text: str, font: ImageFont.FreeTypeFont,
        anchor: str = "la") -> None:
    """Draw ``text`` at ``xy`` (whole pixels) into an ink layer, through the glyph cache."""
    img, ox, oy = _token(font, text, anchor)
    layer.paste(255, (int(round(xy[0])) + ox, int(round(xy[1])) + oy), img)


# ------------------------------------------------------------------------------ pseudo-text

# Frequent Hangul syllables, roughly in order of frequency in running Korean text.
HANGUL = (
    "이다의는에을하고가를한지기사로서들리도아수대자인정나그있시어것적보일전상해부주여장면제"
    "만성소라우동과년경국구신원무내연관중문방세요화위모러선조물비치게마실당공생분용개미학진거"
    "유불계회단말까없으며된었습니했던않데때같또러나람금오늘날간저희너많좀더잘알싶왜냐면언디누"
    "엇떻니바로처럼보통위해대한따라각여러가다시계속특히론역직미벌써곧결국침드디어비록약혹마도"
    "강남북서울산천바람꽃나무마을집길손발눈귀입얼굴음몸생각씀글책종이붓먹벼루님께했다였다한다"
    "하였으니라이라하시던것은에서으로부터까지만큼처럼하여금령명백성왕신하군민관리법률경제정치"
    "교육역사문화예술과학기술산업농업상업노동운동사회조선한국중국일본미국영국세계평화전쟁독립"
    "자유민주공화헌법국회정부행정사법대통령장관위원회회의결정발표보고조사연구개발계획실시추진"
    "확대강화개선노력필요중요문제해결방안대책현재상황최근지난올해내년매년월일시분초첫째둘째셋"
)
HANGUL_PARTICLES = ("은", "는", "이", "가", "을", "를", "의", "에", "에서", "으로", "로", "와",
                    "과", "도", "만", "하고", "이다", "였다", "한다", "하였다", "하니", "이요")
HANGUL_ENDINGS = ("다.", "다.", "니라.", "라.", "요.", "다,", "고,", "며,", "니,", "다.")

# Frequent characters of classical Chinese (traditional forms), as in old books and Hanja.
HANZI_CLASSICAL = (
    "之不也而以其人者於有為一子曰無大所天中王此下上乎矣焉哉兮乃則與自是故可今何吾君臣民國家"
    "道德仁義禮智信孝忠心性理氣學問文章詩書易春秋傳記經史百年月日時山水風雲花草木石金玉光明"
    "東西南北前後左右高長生死知行言見聞得失用事物父母兄弟夫婦朋友師先三五十二四六七八九千萬"
    "里地世代聖賢能善惡正直公私利害治亂安危古今新舊多少輕重遠近內外出入來往始終本末陰陽乾坤"
    "如彼若將欲必當使令受從至及已未非莫亦又皆猶乃爾吾汝我彼孰誰夫蓋雖然惟唯且況豈寧於乎諸"
    "天下國家身修齊治平誠意正心格致明德親民止至善靜安慮得物有本末事終始知所先後則近道矣古之"
    "朝夕晝夜春夏秋冬江河海湖川谷林野田園城郭宮室門戶堂廟祭祀鬼神龍虎馬牛羊鳥魚蟲草竹松梅"
)
# Frequent characters of modern Chinese (simplified forms).
HANZI_MODERN = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过"
    "家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所"
    "本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全"
    "工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教"
    "西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性"
    "通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲"
    "界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认"
)
# Frequent kanji of Japanese text.
KANJI = (
    "日本人年大十二一国中長出三時行見月分後前生五間上東四今金九入学高円子外八六下来気小七山"
    "話女北午百書先名川千水半男西電校語土木聞食車何南万毎白天母火右読友左休父雨会社者事自方"
    "手思作家心地用場合文物理明動意体度同新通業問題世界部関係以上私的発定政治経済主義民法制"
    "度結果目的必要最近現在言葉考取引開内容性実際感情情報教育歴史時代社会生活仕事写真意味"
)
HIRAGANA = ("のののにににははをををたたがががててでしししととるるもなないいかからられすあこうま"
            "っさりけよどくきつそんだやえおせめねみほわ")
KATAKANA = ("アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホ"
            "マミムメモヤユヨラリルレロワン")
LATIN_WORDS = (
    "the of and to in is was that for it as with his on be at by had from this not but which "
    "are or have an they one were all their there been has when who more will would no if out "
    "so said what up its about into than them can only other new some could time these two may "
    "then first any my now such like our over man me even most made after also did many before "
    "must through back years where much your way well down should because each just those people "
    "how too little state good very make world still own see men work long get here between both "
    "life being under never day same another know while last might us great old year off come "
    "since against go came right used take three place house church letter parish record society "
    "printed volume chapter history account family county court council city river north south "
    "land town school public water common whole hand part order given general account received "
    "de la le et les des en du un une est pour que dans par sur au avec ne pas plus se qui "
    "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch"
).split()


@lru_cache(maxsize=16)
def _zipf(n: int, s: float = 0.9, offset: float = 8.0) -> np.ndarray:
    w = 1.0 / (np.arange(n) + offset) ** s
    return w / w.sum()


def _unique(chars: str) -> str:
    return "".join(dict.fromkeys(c for c in chars if not c.isspace()))


_HANGUL = _unique(HANGUL)
_HANZI_C = _unique(HANZI_CLASSICAL)
_HANZI_M = _unique(HANZI_MODERN)
_KANJI = _unique(KANJI)
VERTICAL_FORMS = str.maketrans({"。": "︒", "、": "︑", "，": "︐", "「": "﹁", "」": "﹂",
                                "（": "︵", "）": "︶", "ー": "丨"})
# Faces without those forms: the long-vowel mark turned, stops moved to the top right.
VERTICAL_PLAIN = str.maketrans({"ー": "丨"})
SHIFTED_STOPS = "。、，"



class Text:
    """An endless stream of pseudo-text in one script, drawn from ``rng``."""

    def __init__(self, rng: np.random.Generator, script: str, *, classical: bool = False,
                 punctuation: bool = True, hanja: float = 0.0):
        self.rng = rng
        self.script = script
        self.punctuation = punctuation
        self.hanja = hanja
        if script == "hanzi":
            self.alphabet = _HANZI_C if classical else _HANZI_M
        elif script == "japanese":
            self.alphabet = _KANJI
        elif script == "hangul":
            self.alphabet = _HANGUL
        else:
            self.alphabet = ""
        self._buf: list[str] = []
        self.spaced = script in ("latin", "hangul")

    def _draw(self, alphabet: str, n: int) -> str:
        idx = self.rng.choice(len(alphabet), size=n, p=_zipf(len(alphabet)))
        return "".join(alphabet[i] for i in idx)

    def word(self) -> str:
        """One word with its trailing punctuation (Latin and Hangul, separated by spaces)."""
        rng = self.rng
        if self.script == "latin":
            w = LATIN_WORDS[int(rng.integers(len(LATIN_WORDS)))]
            r = rng.random()
            if r < 0.06:
                w = w.capitalize()
            elif r < 0.08:
                w = str(int(rng.integers(1, 1900)))
            r = rng.random()
            if r < 0.07:
                w += "."
            elif r < 0.14:
                w += ","
            elif r < 0.15:
                w += ";"
            return w
        n = int(rng.choice((1, 2, 2, 2, 3, 3, 4)))
        if self.hanja and rng.random() < self.hanja:
            w = self._draw(_HANZI_C, n)
        else:
            w = self._draw(_HANGUL, n)
        r = rng.random()
        if r < 0.55:
            w += HANGUL_PARTICLES[int(rng.integers(len(HANGUL_PARTICLES)))]
        elif r < 0.63 and self.punctuation:
            w += HANGUL_ENDINGS[int(rng.integers(len(HANGUL_ENDINGS)))]
        return w

    def chars(self, n: int) -> str:
        """``n`` characters of unspaced text (Chinese, Japanese; Hangul for vertical books)."""
        while len(self._buf) < n:
            self._buf.extend(self._chunk())
        out, self._buf = self._buf[:n], self._buf[n:]
        return "".join(out)

    def _chunk(self) -> str:
        rng = self.rng
        if self.script == "japanese":
            parts = []
            for _ in range(int(rng.integers(3, 8))):
                r = rng.random()
                if r < 0.08:
                    k = int(rng.integers(2, 6))
                    parts.append("".join(KATAKANA[int(i)] for i in
                                         rng.integers(len(KATAKANA), size=k)) + "ー" * (k > 3))
                else:
                    parts.append(self._draw(_KANJI, int(rng.integers(1, 3))))
                parts.append("".join(HIRAGANA[int(i)] for i in
                                     rng.integers(len(HIRAGANA), size=int(rng.integers(1, 5)))))
            s = "".join(parts)
            return s + (("、" if rng.random() < 0.6 else "。") if self.punctuation else "")
        if self.script == "hangul":  # unspaced old-style Hangul (vertical books)
            s = self._draw(self.alphabet, int(rng.integers(4, 14)))
            return s + ("。" if self.punctuation and rng.random() < 0.3 else "")
        s = self._draw(self.alphabet, int(rng.integers(4, 13)))
        if self.punctuation:
            s += "，" if rng.random() < 0.65 else "。"
        return s


# ------------------------------------------------------------------------------- geometry

@dataclass
class Page:
    """What one page is drawn with; ``meta`` goes to SOURCES.csv."""

    rng: np.random.Generator
    size: int
    catalog: dict[str, list[Face]]
    ink: Image.Image = field(init=False)
    red: Image.Image | None = None
    rect: tuple[float, float, float, float] | None = None  # the whole page, canvas pixels
    fonts: set[str] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ink = Image.new("L", (self.size, self.size), 0)
        self.draw = ImageDraw.Draw(self.ink)
        self.scale = self.size / 1024

    def pick_face(self, script: str, *, bold: bool | None = None,
                  serif: bool | None = None) -> Face:
        faces = self.catalog[script]
        cand = [f for f in faces if (bold is None or f.bold == bold)
                and (serif is None or f.serif == serif)] or faces
        w = np.array([f.weight for f in cand], dtype=float)
        face = cand[int(self.rng.choice(len(cand), p=w / w.sum()))]
        return face

    def font(self, face: Face, size: float) -> ImageFont.FreeTypeFont:
        self.fonts.add(face.name)
        self.packages.add(face.package)
        return load_font(face, int(round(size)))

    def visible(self, y0: float, y1: float, x0: float = 0, x1: float = 1e9) -> bool:
        return y1 >= 0 and y0 <= self.size and x1 >= 0 and x0 <= self.size


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _page_rect(page: Page, aspect: float) -> tuple[float, float, float, float]:
    """A page larger than the canvas (the canvas is a crop of the scan) around it."""
    rng, s = page.rng, page.size
    width = s * _log_uniform(rng, 1.0, 2.6)
    height = width * aspect
    if height < s:
        height = s
    x0 = -rng.uniform(0, width - s)
    y0 = -rng.uniform(0, height - s)
    page.rect = (x0, y0, x0 + width, y0 + height)
    return page.rect


# ---------------------------------------------------------------------- horizontal layouts

def _draw_line_spaced(page: Page, font, words: list[str], x: float, y: float, width: float,
                      justify: bool, space: float, fill: int = 255) -> None:
    if not justify or len(words) < 2:
        page.draw.text((x, y), " ".join(words), font=font, fill=fill)
        return
    widths = [font.getlength(w) for w in words]
    gap = (width - sum(widths)) / (len(words) - 1)
    if gap > 3 * space:  # a short last line: leave it ragged
        page.draw.text((x, y), " ".join(words), font=font, fill=fill)
        return
    for w, wd in zip(words, widths, strict=True):
        put(page.ink, (x, y), w, font)
        x += wd + gap


def _flow_column(page: Page, text: Text, face: Face, em: float, leading: float,
                 x0: float, y0: float, x1: float, y1: float, *, justify: bool, indent: float,
                 para_p: float, extras: bool) -> None:
    """Paragraphs of ``text`` in the box (x0, y0)-(x1, y1)."""
    rng = page.rng
    font = page.font(face, em)
    width = x1 - x0
    line_h = em * leading
    y = y0
    new_para = True
    space = font.getlength(" ") if text.spaced else 0
    cjk_adv = em * (1 + (rng.uniform(0, 0.12) if rng.random() < 0.4 else 0))
    pending: list[str] = []
    while y + em <= y1:
        if extras and new_para and rng.random() < 0.08 and y1 - y > 8 * line_h:
            y = _insert_figure(page, text, face, em, x0, y, x1, y1)
            continue
        visible = page.visible(y - em, y + line_h)
        ind = indent if new_para else 0.0
        if text.spaced:
            words = pending
            pending = []
            used = sum(font.getlength(w) for w in words) + space * max(0, len(words) - 1)
            last = False
            while True:
                w = text.word()
                wl = font.getlength(w)
                if used + (space if words else 0) + wl > width - ind:
                    pending = [w]
                    break
                words.append(w)
                used += (space if len(words) > 1 else 0) + wl
                if w.endswith(".") and rng.random() < para_p:
                    last = True
                    break
            if visible and words:
                _draw_line_spaced(page, font, words, x0 + ind, y, width - ind,
                                  justify and not last, space)
            new_para = last
        else:
            n = max(1, int((width - ind) // cjk_adv))
            last = rng.random() < para_p * 0.5
            if last:
                n = max(1, int(n * rng.uniform(0.2, 0.9)))
            s = text.chars(n)
            if visible:
                if abs(cjk_adv - em) < 0.5:
                    page.draw.text((x0 + ind, y), s, font=font, fill=255)
                else:
                    for i, ch in enumerate(s):
                        put(page.ink, (x0 + ind + i * cjk_adv, y), ch, font)
            new_para = last
        y += line_h * (1 + (0.5 if new_para and rng.random() < 0.3 else 0))


def _halftone(page: Page, x0: int, y0: int, x1: int, y1: int, tone: np.ndarray | float,
              period: float, angle: float) -> None:
    """Add a printed halftone screen (dots of ``tone`` darkness, 0..1) to the ink layer."""
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(page.size, int(x1)), min(page.size, int(y1))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u = (xx * c + yy * s) * (2 * math.pi / period)
    v = (-xx * s + yy * c) * (2 * math.pi / period)
    screen = (np.cos(u) + np.cos(v)) * 0.25 + 0.5  # 0..1
    if isinstance(tone, np.ndarray):
        tone = np.asarray(Image.fromarray(tone.astype(np.float32), "F").resize(
            (x1 - x0, y1 - y0), Image.Resampling.BICUBIC))
    dots = np.clip((tone - screen) * 6 + 0.5, 0, 1) * 255
    region = np.asarray(page.ink.crop((x0, y0, x1, y1)), dtype=np.float32)
    page.ink.paste(Image.fromarray(np.maximum(region, dots).astype(np.uint8), "L"), (x0, y0))


def _picture_tone(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random 'photograph' (sky, horizon, blobs), darkness 0..1, at low resolution."""
    gh, gw = max(4, h // 8), max(4, w // 8)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    t = rng.uniform(0.1, 0.4) + 0.3 * (yy / gh > rng.uniform(0.3, 0.7))
    for _ in range(int(rng.integers(2, 7))):
        cy, cx = rng.uniform(0, gh), rng.uniform(0, gw)
        r = rng.uniform(0.08, 0.35) * max(gh, gw)
        t = t + rng.uniform(-0.5, 0.6) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    t = t + rng.normal(0, 0.05, t.shape)
    return np.clip(t, 0.02, 0.95).astype(np.float32)


def _insert_figure(page: Page, text: Text, face: Face, em: float, x0: float, y: float,
                   x1: float, y1: float) -> float:
    rng = page.rng
    h = min(y1 - y - 3 * em, (x1 - x0) * rng.uniform(0.4, 0.8))
    kind = rng.random()
    fx0, fx1 = x0, x1
    if rng.random() < 0.4:
        shrink = (x1 - x0) * rng.uniform(0.1, 0.25)
        fx0, fx1 = x0 + shrink, x1 - shrink
    if page.visible(y, y + h):
        if kind < 0.6:  # halftone photograph
            tone = _picture_tone(rng, int(h), int(fx1 - fx0))
            period = rng.uniform(3.0, 7.0) * page.scale
            _halftone(page, fx0, y, fx1, y + h, tone, period, math.radians(45))
            if rng.random() < 0.5:
                page.draw.rectangle((fx0, y, fx1, y + h), outline=255,
                                    width=max(1, int(1.5 * page.scale)))
        else:  # ruled table
            _table(page, text, face, em * 0.85, fx0, y, fx1, y + h)
    y += h + 0.6 * em
    if rng.random() < 0.8:  # caption
        cap = page.font(face, em * 0.8)
        s = (" ".join(text.word() for _ in range(int(rng.integers(3, 9)))) if text.spaced
             else text.chars(int(rng.integers(6, 18))))
        if page.visible(y, y + em):
            wd = cap.getlength(s)
            page.draw.text(((x0 + x1 - wd) / 2, y), s, font=cap, fill=255)
        y += 1.4 * em
    return y + 0.6 * em


def _table(page: Page, text: Text, face: Face, em: float, x0: float, y0: float, x1: float,
           y1: float) -> None:
    rng = page.rng
    rows = max(2, int((y1 - y0) // (em * rng.uniform(1.6, 2.4))))
    cols = int(rng.integers(2, 6))
    lw = max(1, int(round(rng.uniform(0.8, 2.2) * page.scale)))
    xs = np.sort(np.concatenate([[x0, x1], rng.uniform(x0, x1, cols - 1)]))
    xs = np.linspace(x0, x1, cols + 1) * 0.5 + xs * 0.5
    ys = np.linspace(y0, y1, rows + 1)
    draw = page.draw
    draw.rectangle((x0, y0, x1, y1), outline=255, width=lw * (2 if rng.random() < 0.5 else 1))
    for x in xs[1:-1]:
        draw.line((x, y0, x, y1), fill=255, width=lw)
    for i, y in enumerate(ys[1:-1]):
        draw.line((x0, y, x1, y), fill=255, width=lw * (2 if i == 0 else 1))
    font = page.font(face, em)
    bold_face = page.pick_face(text.script if text.script in page.catalog else "latin",
                               bold=True)
    for r in range(rows):
        f = page.font(bold_face, em) if r == 0 else font
        for c in range(cols):
            cw = xs[c + 1] - xs[c] - em
            if cw < em:
                continue
            if text.spaced:
                s = text.word() if rng.random() < 0.7 else str(int(rng.integers(1, 9999)))
            else:
                s = text.chars(max(1, min(int(cw // em), int(rng.integers(1, 6)))))
            if f.getlength(s) <= cw:
                draw.text((xs[c] + em / 2, ys[r] + (ys[r + 1] - ys[r] - em) / 2), s, font=f,
                          fill=255)


def _heading(page: Page, text: Text, script: str, em: float, x0: float, x1: float,
             y: float) -> float:
    rng = page.rng
    size = em * rng.uniform(1.3, 2.4)
    face = page.pick_face(script, bold=rng.random() < 0.6)
    font = page.font(face, size)
    if text.spaced:
        s = " ".join(text.word().rstrip(".,;") for _ in range(int(rng.integers(1, 6))))
        if script == "latin" and rng.random() < 0.5:
            s = s.upper()
    else:
        s = text.chars(int(rng.integers(2, 10))).rstrip("，。、")
        if rng.random() < 0.4:
            s = "第" + "一二三四五六七八九十"[int(rng.integers(10))] + "章 " + s
    wd = font.getlength(s)
    x = (x0 + x1 - wd) / 2 if rng.random() < 0.6 else x0
    if page.visible(y, y + size):
        page.draw.text((x, y), s, font=font, fill=255)
    return y + size * rng.uniform(1.6, 2.6)


def _page_number(page: Page, face: Face, em: float, x: float, y: float, align: str) -> None:
    rng = page.rng
    n = str(int(rng.integers(1, 640)))
    s = rng.choice([n, f"— {n} —", f"- {n} -", f"({n})"]) if face.package != "pillow" else n
    font = page.font(face, em * rng.uniform(0.8, 1.0))
    wd = font.getlength(s)
    x = {"center": x - wd / 2, "right": x - wd, "left": x}[align]
    page.draw.text((x, y), s, font=font, fill=255)


def layout_horizontal(page: Page, script: str) -> None:
    rng = page.rng
    s = page.scale
    text = Text(rng, script, classical=script == "hanzi" and rng.random() < 0.3,
                hanja=0.15 if script == "hangul" and rng.random() < 0.3 else 0.0)
    face_script = "hanja" if text.hanja else script
    face = page.pick_face(face_script, bold=rng.random() < 0.12)
    em = _log_uniform(rng, 15, 44) * s
    leading = rng.uniform(1.15, 1.5) if script == "latin" else rng.uniform(1.4, 2.0)
    px0, py0, px1, py1 = _page_rect(page, rng.uniform(1.3, 1.5))
    pw = px1 - px0
    mx0, mx1 = pw * rng.uniform(0.06, 0.14), pw * rng.uniform(0.06, 0.14)
    my0, my1 = pw * rng.uniform(0.07, 0.14), pw * rng.uniform(0.08, 0.16)
    tx0, tx1, ty0, ty1 = px0 + mx0, px1 - mx1, py0 + my0, py1 - my1
    ncols = 1
    if tx1 - tx0 > 40 * em:
        ncols = int(rng.choice([1, 2, 2, 3]))
    elif tx1 - tx0 > 24 * em and rng.random() < 0.4:
        ncols = 2
    page.meta["layout"] = f"horizontal, {ncols} column{'s' * (ncols > 1)}"
    lw = max(1, int(round(rng.uniform(0.7, 1.8) * s)))
    # running head with a rule, page number
    if rng.random() < 0.6:
        head_font_face = page.pick_face(face_script, bold=False)
        hs = em * 0.8
        hy = ty0 - 2.2 * em
        if page.visible(hy, hy + hs):
            hfont = page.font(head_font_face, hs)
            hs_text = (" ".join(text.word().rstrip(".,;") for _ in range(int(rng.integers(2, 6))))
                       if text.spaced else text.chars(int(rng.integers(3, 9))))
            hw = hfont.getlength(hs_text)
            page.draw.text(((tx0 + tx1 - hw) / 2, hy), hs_text, font=hfont, fill=255)
            _page_number(page, head_font_face, hs, tx1, hy, "right")
            page.draw.line((tx0, hy + 1.5 * hs, tx1, hy + 1.5 * hs), fill=255, width=lw)
    elif rng.random() < 0.8:
        y = ty1 + 1.2 * em
        if page.visible(y, y + em):
            _page_number(page, face, em, (tx0 + tx1) / 2, y, "center")
    y = ty0
    if rng.random() < 0.35:
        y = _heading(page, text, face_script, em, tx0, tx1, ty0 + rng.uniform(0, 6) * em)
    gutter = em * rng.uniform(1.2, 2.5)
    cw = (tx1 - tx0 - gutter * (ncols - 1)) / ncols
    justify = rng.random() < 0.75
    indent = em * (rng.choice([0, 1, 1.5, 2]) if text.spaced else rng.choice([0, 1, 2]))
    para_p = rng.uniform(0.05, 0.3)
    rule = ncols > 1 and rng.random() < 0.5
    if rng.random() < 0.1:  # tinted box
        bx0 = tx0 + rng.uniform(0, 0.3) * (tx1 - tx0)
        by0 = y + rng.uniform(0, 0.5) * (ty1 - y)
        bx1, by1 = bx0 + cw * rng.uniform(0.6, 1.0), by0 + rng.uniform(5, 20) * em
        _halftone(page, bx0, by0, bx1, by1, rng.uniform(0.08, 0.25),
                  rng.uniform(3, 6) * s, math.radians(float(rng.choice([0, 45]))))
    for c in range(ncols):
        cx0 = tx0 + c * (cw + gutter)
        _flow_column(page, text, face, em, leading, cx0, y, cx0 + cw, ty1, justify=justify,
                     indent=indent, para_p=para_p, extras=True)
        if rule and c > 0:
            xr = cx0 - gutter / 2
            page.draw.line((xr, y, xr, ty1), fill=255, width=lw)


# ------------------------------------------------------------------------ vertical layouts

def layout_vertical(page: Page, script: str) -> None:
    """Old East Asian book: columns top to bottom, right to left, framed and ruled."""
    rng = page.rng
    s = page.scale
    classical = script == "hanzi" or rng.random() < 0.3
    text = Text(rng, script, classical=classical, punctuation=rng.random() < 0.5)
    face_script = script
    if script == "hangul" and rng.random() < 0.3:
        text = Text(rng, "hanzi", classical=True, punctuation=text.punctuation)
        face_script = "hanja"
    face = page.pick_face(face_script, bold=rng.random() < 0.15)
    em = _log_uniform(rng, 20, 64) * s
    cell = em * rng.uniform(1.0, 1.15)
    col_w = em * rng.uniform(1.35, 1.9)
    px0, py0, px1, py1 = _page_rect(page, rng.uniform(1.3, 1.6))
    pw = px1 - px0
    ruled = rng.random() < 0.7
    lw = max(1, int(round(rng.uniform(0.8, 2.0) * s)))
    fx0, fx1 = px0 + pw * rng.uniform(0.07, 0.14), px1 - pw * rng.uniform(0.07, 0.14)
    fy0, fy1 = py0 + pw * rng.uniform(0.09, 0.16), py1 - pw * rng.uniform(0.1, 0.18)
    ncols = max(1, int((fx1 - fx0) // col_w))
    col_w = (fx1 - fx0) / ncols
    page.meta["layout"] = f"vertical, {ncols} columns" + (", ruled" if ruled else "")
    draw = page.draw
    if ruled:
        if rng.random() < 0.6:  # double frame: thick outside, thin inside
            g = max(3, int(em * rng.uniform(0.15, 0.3)))
            draw.rectangle((fx0 - g, fy0 - g, fx1 + g, fy1 + g), outline=255, width=lw * 3)
        draw.rectangle((fx0, fy0, fx1, fy1), outline=255, width=lw)
        for i in range(1, ncols):
            x = fx1 - i * col_w
            if -2 <= x <= page.size + 2:
                draw.line((x, fy0, x, fy1), fill=255, width=max(1, lw - (rng.random() < 0.5)))
    font = page.font(face, em)
    small = page.font(face, em * 0.55)
    vmap = VERTICAL_FORMS if face.vforms else VERTICAL_PLAIN
    rows = int((fy1 - fy0 - 0.2 * em) // cell)
    for c in range(ncols):
        cx = fx1 - (c + 0.5) * col_w
        x_vis = -col_w <= cx <= page.size + col_w
        y = fy0 + 0.15 * em + (cell - em) / 2
        start = 0
        if rng.random() < 0.1:  # a column left empty (end of a chapter)
            continue
        if rng.random() < 0.15:  # indented line (heading or new paragraph)
            start = int(rng.integers(1, 4))
        stop = rows if rng.random() > 0.15 else int(rng.integers(1, max(2, rows)))
        r = start
        while r < stop:
            yc = y + r * cell + cell / 2
            if rng.random() < 0.03 and stop - r >= 3:  # commentary in two small sub-columns
                k = int(rng.integers(2, min(stop - r, 8) + 1))
                sub = text.chars(2 * int(k * cell / (em * 0.6)))
                n_half = len(sub) // 2
                step = (k * cell) / max(1, n_half)
                for j, ch in enumerate(sub.translate(vmap)):
                    side = 1 if j < n_half else -1
                    jj = j if j < n_half else j - n_half
                    if x_vis:
                        put(page.ink, (cx + side * em * 0.3, y + r * cell + (jj + 0.5) * step),
                            ch, small, "mm")
                r += k
                continue
            ch = text.chars(1).translate(vmap)
            if x_vis and -cell <= yc <= page.size + cell:
                if ch in SHIFTED_STOPS:  # centre the stop in the top-right quarter
                    bx0, by0, bx1, by1 = font.getbbox(ch)
                    put(page.ink, (cx + 0.25 * em - (bx0 + bx1) / 2,
                                   yc - 0.25 * em - (by0 + by1) / 2), ch, font)
                else:
                    put(page.ink, (cx, yc), ch, font, "mm")
            r += 1
    if rng.random() < 0.25:
        _seal(page, rng.uniform(0, page.size), rng.uniform(0, page.size), em * rng.uniform(2, 4))


def _seal(page: Page, x: float, y: float, side: float) -> None:
    """A red square seal with four characters, in a layer of its own (vermilion ink)."""
    rng = page.rng
    script = "hanzi" if "hanzi" in page.catalog else ("hanja" if "hanja" in page.catalog
                                                      else None)
    if script is None:
        return
    size = int(side * 1.5)
    layer = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(layer)
    o = (size - side) / 2
    face = page.pick_face(script, bold=True)
    font = page.font(face, side * 0.42)
    chars = Text(rng, "hanzi", classical=True, punctuation=False).chars(4)
    inverted = rng.random() < 0.5
    if inverted:  # white characters on red
        d.rectangle((o, o, o + side, o + side), fill=255)
    else:
        d.rectangle((o, o, o + side, o + side), outline=255, width=max(2, int(side * 0.06)))
    for j, ch in enumerate(chars):  # read right column first, top to bottom
        cx = o + side * (0.73 if j < 2 else 0.27)
        cy = o + side * (0.28 if j % 2 == 0 else 0.72)
        d.text((cx, cy), ch, font=font, fill=0 if inverted else 255, anchor="mm")
    layer = layer.rotate(float(rng.uniform(-6, 6)), resample=Image.Resampling.BILINEAR)
    if page.red is None:
        page.red = Image.new("L", (page.size, page.size), 0)
    page.red.paste(layer, (int(x - size / 2), int(y - size / 2)), layer)


# --------------------------------------------------------------------------- paper and ink

def _noise(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int = 3,
           persistence: float = 0.5) -> np.ndarray:
    """Smooth noise of unit-ish amplitude, ``cells`` blobs across at the coarsest octave."""
    total = np.zeros((h, w), np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        n = cells * 2 ** o
        small = rng.standard_normal((n + 1, n + 1), dtype=np.float32)
        total += amp * np.asarray(Image.fromarray(small, "F").resize(
            (w, h), Image.Resampling.BICUBIC))
        norm += amp * amp
        amp *= persistence
    return total / math.sqrt(norm)


def _back_side(page: Page, script: str) -> np.ndarray:
    """Faint mirrored text of the other side of the leaf, at half resolution, blurred."""
    rng = page.rng
    half = max(8, page.size // 2)
    img = Image.new("L", (half, half), 0)
    d = ImageDraw.Draw(img)
    faces = page.catalog.get(script) or page.catalog["latin"]
    face = faces[int(rng.integers(len(faces)))]
    em = _log_uniform(rng, 16, 40) * page.scale / 2
    font = page.font(face, em)
    text = Text(rng, script if script in SCRIPTS else "latin")
    if rng.random() < 0.5 and not text.spaced:  # vertical
        col = em * rng.uniform(1.4, 1.9)
        x = half - rng.uniform(0, col)
        while x > 0:
            n = int(half // em) + 1
            for i, ch in enumerate(text.chars(n)):
                put(img, (x, i * em * 1.05), ch, font, "mm")
            x -= col
    else:
        y = rng.uniform(-em, em)
        while y < half:
            if text.spaced:
                s = " ".join(text.word() for _ in range(int(half // (em * 2.5)) + 2))
            else:
                s = text.chars(int(half // em) + 1)
            d.text((rng.uniform(-em, 0) * 2, y), s, font=font, fill=255)
            y += em * rng.uniform(1.3, 1.9)
    img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.6)))
    img = img.resize((page.size, page.size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) * np.float32(1 / 255)


def _paper(page: Page, px: tuple[float, float, float, float] | None) -> np.ndarray:
    """The clean paper as float32 RGB 0..1 (before ink), with its ageing and lighting."""
    rng, n = page.rng, page.size
    lo = max(16, n // 4)  # smooth fields are built at a quarter of the resolution
    # base colour: white, off-white, cream, yellowed or greyish
    kind = rng.choice(["white", "cream", "yellowed", "grey"], p=[0.2, 0.35, 0.35, 0.1])
    base = {"white": (0.95, 0.95, 0.93), "cream": (0.94, 0.91, 0.83),
            "yellowed": (0.90, 0.83, 0.68), "grey": (0.86, 0.85, 0.82)}[kind]
    base = np.array(base, np.float32) + rng.normal(0, 0.015, 3).astype(np.float32)
    page.meta["paper"] = str(kind)
    mottle = _noise(rng, lo, lo, int(rng.integers(3, 8)), 4) * rng.uniform(0.012, 0.045)
    yy, xx = np.mgrid[0:lo, 0:lo].astype(np.float32) / lo
    # yellowing toward the page edges (the page may extend past the crop)
    age = np.zeros((lo, lo), np.float32)
    if rng.random() < 0.7:
        x0, y0, x1, y1 = (v / n for v in px) if px else (0, 0, 1, 1)
        d = np.minimum.reduce([xx - x0, x1 - xx, yy - y0, y1 - yy])
        reach = rng.uniform(0.05, 0.25)
        wobble = np.maximum(1 + 0.4 * _noise(rng, lo, lo, 6, 2), 0.3)
        age = np.clip(np.exp(-np.maximum(d, 0) / (reach * wobble)), 0, 1) * rng.uniform(0.3, 1)
    # stains: soft blotches and water tide lines (part of the clean page, not damage)
    stain = np.zeros((lo, lo), np.float32)
    for _ in range(int(rng.poisson(0.8))):
        cy, cx = rng.uniform(-0.2, 1.2, 2)
        r = rng.uniform(0.05, 0.35)
        dist = np.sqrt((yy - cy) ** 2 + ((xx - cx) * rng.uniform(0.6, 1.4)) ** 2)
        dist = dist * (1 + 0.25 * _noise(rng, lo, lo, 5, 2))
        blob = np.clip(1 - dist / r, 0, 1) ** 0.5 * rng.uniform(0.1, 0.35)
        if rng.random() < 0.5:  # a tide line at the rim
            blob += np.exp(-((dist - r) / (0.01 + 0.02 * rng.random())) ** 2) * rng.uniform(
                0.15, 0.4)
        stain += blob
    tint = np.array([0.0, 0.07, 0.22], np.float32)  # what ageing takes away, per channel
    paper = base * (1 + mottle[..., None]) * (1 - age[..., None] * tint * 1.2) \
        * (1 - np.minimum(stain, 0.8)[..., None] * (tint + 0.06))
    # lighting of the scan: gradient, vignette, sometimes a gutter shadow
    light = 1 + rng.uniform(-0.06, 0.06) * (xx - 0.5) + rng.uniform(-0.06, 0.06) * (yy - 0.5)
    light -= rng.uniform(0, 0.08) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    if rng.random() < 0.15:
        side = rng.random() < 0.5
        dx = (xx if side else 1 - xx) - rng.uniform(-0.1, 0.05)
        light -= rng.uniform(0.1, 0.45) * np.exp(-np.maximum(dx, 0) / rng.uniform(0.02, 0.08))
        page.meta["paper"] += ", gutter shadow"
    paper = paper * light[..., None]
    # fibre-scale grain (the per-pixel grain comes with the scanner's noise in _finish)
    g = max(8, n // 3)
    grain = np.asarray(Image.fromarray(rng.standard_normal((g, g), dtype=np.float32), "F")
                       .resize((n, n), Image.Resampling.BILINEAR))
    grain = grain * np.float32(rng.uniform(0.006, 0.02))
    if rng.random() < 0.25:  # visible fibres (rice paper, hanji)
        fib = Image.new("L", (n, n), 0)
        d = ImageDraw.Draw(fib)
        for _ in range(int(rng.integers(60, 300) * (n / 1024) ** 2)):
            x, y = rng.uniform(0, n, 2)
            a = rng.uniform(0, math.pi)
            ln = rng.uniform(8, 40) * page.scale
            pts = [(x, y)]
            for _k in range(3):
                a += rng.normal(0, 0.3)
                x, y = x + math.cos(a) * ln / 3, y + math.sin(a) * ln / 3
                pts.append((x, y))
            d.line(pts, fill=int(rng.integers(60, 255)), width=1)
        fib_a = np.asarray(fib.filter(ImageFilter.GaussianBlur(0.6)), np.float32)
        grain += fib_a * np.float32(rng.uniform(-0.05, 0.04) / 255)
        page.meta["paper"] += ", fibres"
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(paper[..., c]), "F")
                         .resize((n, n), Image.Resampling.BILINEAR)) + grain for c in range(3)]
    if rng.random() < 0.3:  # foxing: small brown spots
        fox = Image.new("L", (n, n), 0)
        d = ImageDraw.Draw(fox)
        cx, cy = rng.uniform(0, n, 2)
        for _ in range(int(rng.integers(5, 60))):
            x, y = rng.normal((cx, cy), n * rng.uniform(0.05, 0.4))
            r = rng.uniform(0.8, 5) * page.scale
            d.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(50, 200)))
        fox_a = np.asarray(fox.filter(ImageFilter.GaussianBlur(rng.uniform(1, 2.5))),
                           np.float32) * np.float32(rng.uniform(0.2, 0.5) / 255)
        _darken(planes, fox_a, (0.15, 0.3, 0.5))
        page.meta["paper"] += ", foxing"
    return planes


def _darken(planes: list[np.ndarray], amount: np.ndarray, weights) -> None:
    """planes[c] *= 1 - amount * weights[c], in place (amount is one full-size plane)."""
    for plane, w in zip(planes, weights, strict=True):
        f = amount * np.float32(w)
        np.subtract(np.float32(1), f, out=f)
        plane *= f


def _ink_colour(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    r = rng.random()
    if r < 0.75:
        v = rng.uniform(0.04, 0.2)
        return np.array([v, v, v], np.float32) + rng.normal(0, 0.01, 3).astype(np.float32), \
            "black"
    if r < 0.9:
        return np.array([0.38, 0.27, 0.17], np.float32) * rng.uniform(0.7, 1.2), "brown"
    return np.array([0.17, 0.22, 0.42], np.float32) * rng.uniform(0.7, 1.2), "blue"


def _ink_coverage(page: Page, img: Image.Image) -> np.ndarray:
    """Coverage 0..1 of an ink layer after printing: spread, blur and worn type."""
    rng = page.rng
    # The blur is that of the ink on paper and of the scanner's optics together.
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2) * page.scale ** 0.5))
    if rng.random() < 0.25:  # heavy impression: ink spread beyond the type
        lo, hi = rng.uniform(0.0, 0.05), rng.uniform(0.3, 0.5)
    else:
        lo, hi = rng.uniform(0.0, 0.2), rng.uniform(0.6, 0.95)
    lut = np.clip((np.arange(256) / 255 - lo) / (hi - lo) * 255 + 0.5, 0, 255).astype(np.uint8)
    cov = np.asarray(img.point(lut.tolist()), np.float32)
    n = page.size
    density = 1 - rng.uniform(0.0, 0.3) * (0.5 + 0.5 * _noise(rng, n // 4, n // 4, 4, 2))
    if rng.random() < 0.4:  # worn type: speckled drop-outs in the strokes
        speck = _noise(rng, n // 2, n // 2, max(8, n // 8), 1)
        density = np.asarray(Image.fromarray(density.astype(np.float32), "F").resize(
            (n // 2, n // 2), Image.Resampling.BILINEAR)) * np.clip(
            1.6 + speck * rng.uniform(0.3, 0.9), 0.25, 1)
    density = np.clip(density, 0, 1).astype(np.float32) * np.float32(1 / 255)
    cov *= np.asarray(Image.fromarray(density, "F").resize((n, n), Image.Resampling.BILINEAR))
    return cov


def _finish(page: Page, planes: list[np.ndarray]) -> Image.Image:
    """Scanner: per-pixel noise (paper grain and sensor), levels, sometimes a grey scan."""
    rng = page.rng
    n = page.size
    noise = rng.standard_normal((n, n), dtype=np.float32)
    noise *= rng.uniform(0.005, 0.014)
    black, white = rng.uniform(0, 0.08), rng.uniform(0.91, 1.03)
    gain = np.float32(255 / (white - black))
    offset = np.float32(0.5 - black * gain)
    if rng.random() < 0.2:
        page.meta["scan"] = "grey"
        lum = planes[0] * np.float32(0.299)
        lum += planes[1] * np.float32(0.587)
        lum += planes[2] * np.float32(0.114)
        planes = [lum]
    else:
        page.meta["scan"] = "colour"
    bands = []
    for a in planes:
        a += noise
        a *= gain
        a += offset
        np.clip(a, 0, 255, out=a)
        bands.append(Image.fromarray(a.astype(np.uint8), "L"))
    if len(bands) == 1:
        return bands[0].convert("RGB")
    return Image.merge("RGB", bands)


# ---------------------------------------------------------------------------------- pages

def page_seed(seed: int, index: int) -> int:
    """The seed of page ``index`` of the set drawn with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


# How often a page of each script is set vertically, as in old books.
VERTICAL_SHARE = {"latin": 0.0, "hangul": 0.35, "hanzi": 0.55, "japanese": 0.45}


def render_page(seed: int, size: int, catalog: dict[str, list[Face]],
                script: str | None = None,
                layout: str | None = None) -> tuple[Image.Image, dict[str, str]]:
    """One page crop as RGB, and what it was drawn with. ``catalog`` is from find_fonts.

    ``script`` and ``layout`` ("horizontal" or "vertical") override the page's own draw.
    """
    rng = np.random.default_rng(seed)
    page = Page(rng, size, catalog)
    scripts = [s for s in SCRIPTS if s in catalog]
    if not scripts:
        raise ValueError("no fonts in the catalog")
    weights = np.array([{"latin": 1.0, "hangul": 1.4, "hanzi": 1.0, "japanese": 0.8}[s]
                        for s in scripts])
    chosen = script or scripts[int(rng.choice(len(scripts), p=weights / weights.sum()))]
    if chosen not in catalog:
        raise ValueError(f"no fonts for {chosen}")
    page.meta["script"] = chosen
    vertical = rng.random() < VERTICAL_SHARE[chosen]
    if layout is not None:
        vertical = layout == "vertical"
    if vertical and chosen == "latin":
        raise ValueError("Latin pages are horizontal")
    if vertical:
        layout_vertical(page, chosen)
    else:
        layout_horizontal(page, chosen)
    planes = _paper(page, page.rect)
    if rng.random() < 0.3:
        back = _back_side(page, chosen)
        back *= np.float32(rng.uniform(0.05, 0.18))
        _darken(planes, back, (0.7, 0.75, 0.85))
        page.meta["paper"] += ", bleed-through"
    if rng.random() < 0.6:  # the leaf lay slightly askew on the scanner
        angle = float(rng.normal(0, 0.5))
        page.ink = page.ink.rotate(angle, resample=Image.Resampling.BILINEAR)
        if page.red is not None:
            page.red = page.red.rotate(angle, resample=Image.Resampling.BILINEAR)
    colour, cname = _ink_colour(rng)
    page.meta["ink"] = cname
    _darken(planes, _ink_coverage(page, page.ink), 1 - colour)
    if page.red is not None:
        red = _ink_coverage(page, page.red)
        red *= np.float32(rng.uniform(0.6, 0.9))
        _darken(planes, red, (0.22, 0.8, 0.85))
        page.meta["ink"] += ", red seal"
    img = _finish(page, planes)
    faces = {f.name: f for fs in catalog.values() for f in fs}
    used = sorted(page.fonts)
    page.meta["fonts"] = "; ".join(used)
    pkgs = sorted({faces[u].package for u in used if u in faces})
    faces_by_pkg = {faces[u].package: faces[u] for u in used if u in faces}
    page.meta["packages"] = "; ".join(pkgs)
    page.meta["licences"] = "; ".join(f"{p}: {faces_by_pkg[p].licence}" for p in pkgs)
    return img, page.meta


# ----------------------------------------------------------------------------------- main

SOURCES_FIELDS = ["file", "index", "set_seed", "page_seed", "size", "script", "layout",
                  "paper", "ink", "scan", "fonts", "packages", "licences"]


def die(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def read_sources(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def write_sources(path: Path, rows: dict[str, dict[str, str]]) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SOURCES_FIELDS)
        writer.writeheader()
        for key in sorted(rows):
            writer.writerow(rows[key])
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render synthetic scanned document pages.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, required=True, help="pages in the set")
    parser.add_argument("--seed", type=int, required=True, help="seed of the set")
    parser.add_argument("--size", type=int, default=1024, help="side of the square crops")
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg",
                        help=f"JPEG quality {JPEG_QUALITY} (default) or PNG")
    parser.add_argument("--scripts", default=",".join(SCRIPTS),
                        help="comma-separated subset of " + ",".join(SCRIPTS))
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 64:
        die("--count must be at least 1 and --size at least 64")
    scripts = tuple(s.strip() for s in args.scripts.split(",") if s.strip())
    unknown = [s for s in scripts if s not in SCRIPTS]
    if unknown:
        die(f"unknown script {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")
    catalog, missing = find_fonts(scripts)
    if missing:
        # A set made with fewer fonts would differ from the one documented; refuse instead.
        die("\n".join(missing) + "\n(all fonts: apt-get install -y " + " ".join(APT_PACKAGES)
            + "; or leave the script out with --scripts)")

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    sources = read_sources(out / "SOURCES.csv")
    written = existing = 0
    t0 = time.perf_counter()
    for index in range(args.count):
        name = f"doc_s{args.seed}_{index:05d}.{args.format}"
        dst = out / name
        if dst.exists() and name in sources:
            existing += 1
            continue
        ps = page_seed(args.seed, index)
        img, meta = render_page(ps, args.size, catalog)
        tmp = dst.with_name(f".{dst.name}.part")
        if args.format == "jpg":
            img.save(tmp, "JPEG", quality=JPEG_QUALITY)
        else:
            img.save(tmp, "PNG", compress_level=3)
        os.replace(tmp, dst)
        sources[name] = {"file": name, "index": str(index), "set_seed": str(args.seed),
                         "page_seed": str(ps), "size": str(args.size), **meta}
        written += 1
        if written % 50 == 0:
            write_sources(out / "SOURCES.csv", sources)
            rate = written / (time.perf_counter() - t0)
            print(f"  {written} pages written ({rate:.1f} pages/s)")
    write_sources(out / "SOURCES.csv", sources)
    dt = time.perf_counter() - t0
    rate = f" in {dt:.1f} s ({written / dt:.1f} pages/s)" if written else ""
    print(f"done: {written} written{rate}, {existing} already present; {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
