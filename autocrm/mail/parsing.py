"""Turn the raw bytes of an incoming email into what the email channel needs.

Every door mail comes in by (IMAP, the MTA pipe, a provider's webhook) hands over raw RFC 5322
bytes; this module is the one place that reads them. It is pure (no database, no app) so that
the corpus of real-world-shaped messages can be checked message by message, and it never raises
on bad input except `UnparseableEmail`: real mail declares wrong charsets, carries raw 8-bit
headers and broken encodings, and one bad message must not stop a mailbox. Everything it returns
is clean text: no NUL and no lone surrogate, which PostgreSQL and its driver cannot store.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import nh3
from charset_normalizer import from_bytes
from mailparser_reply.parser import EmailMessage as ReplyMessage

from autocrm.mail import html_text

__all__ = [
    "Address",
    "ParsedAttachment",
    "ParsedEmail",
    "UnparseableEmail",
    "parse_email",
    "strip_subject_prefixes",
]


class UnparseableEmail(Exception):
    """Raw bytes that are not a usable email (no From address, garbage)."""


@dataclass(frozen=True)
class Address:
    name: str
    email: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str | None
    inline: bool


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    sender: Address
    reply_to: Address | None
    to: list[Address]
    cc: list[Address]
    subject: str
    date: datetime | None
    text: str
    reply_text: str
    html: str | None
    attachments: list[ParsedAttachment]
    auto: str | None
    bounced: list[str]
    size: int


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one raw message; raise UnparseableEmail when it has no usable sender."""
    if not raw or not raw.strip():
        raise UnparseableEmail("empty message")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it still trips on is garbage
        raise UnparseableEmail(f"not an email: {exc}") from exc
    assert isinstance(msg, EmailMessage)
    sender = _first_address(msg, "From") or _first_address(msg, "Sender")
    if sender is None:
        raise UnparseableEmail("no From address")
    subject = " ".join(_header(msg, "Subject").split())
    text_part, html_part = _body_parts(msg)
    html = _sanitize_html(_part_text(html_part)) if html_part is not None else None
    text = _part_text(text_part) if text_part is not None else ""
    if not text.strip() and html:
        text = html_text.to_text(html)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    auto, bounced = _classify(msg, sender, subject)
    return ParsedEmail(
        message_id=next(iter(_message_ids(_header(msg, "Message-ID"))), None),
        in_reply_to=_message_ids(_header(msg, "In-Reply-To")),
        references=_message_ids(_header(msg, "References")),
        sender=sender,
        reply_to=_first_address(msg, "Reply-To"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        subject=subject,
        date=_date(_header(msg, "Date")),
        text=text,
        reply_text=reply_text(text),
        html=html,
        attachments=list(_attachments(msg, skip=(text_part, html_part))),
        auto=auto,
        bounced=bounced,
        size=len(raw),
    )


# --- clean text ---------------------------------------------------------------------------

_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Drop NUL and lone surrogates (from raw 8-bit bytes or broken encodings) from text."""
    if _has_8bit(value):
        # The parser keeps raw 8-bit header bytes as surrogate escapes: most are UTF-8.
        value = _decode_bytes(value.encode("utf-8", "surrogateescape"), None)
    return _SURROGATES.sub("\ufffd", value).replace("\x00", "")


# --- headers ------------------------------------------------------------------------------


def _header(msg: Message, name: str) -> str:
    """One header's decoded value, "" when absent; a header the parser trips on is read raw."""
    raw = _raw_header(msg, name)
    if _has_8bit(raw):  # the parser decodes raw 8-bit as UTF-8 only; latin-1 bytes are lost
        return clean_text(" ".join(raw.split()))
    try:
        value = msg.get(name)
        text = "" if value is None else str(value)
    except Exception:  # CPython's header parser has crashed on malformed values before
        text = raw
    return clean_text(text).strip()


def _has_8bit(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _raw_header(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _addresses(msg: Message, name: str) -> list[Address]:
    try:
        header = msg.get(name)
        pairs = (
            [(a.display_name, a.addr_spec) for a in header.addresses]
            if header is not None and hasattr(header, "addresses")
            else []
        )
    except Exception:
        pairs = getaddresses([_raw_header(msg, name)])
    found: list[Address] = []
    for display, spec in pairs:
        email = clean_text(spec).strip().strip("<>").lower()
        if "@" in email and " " not in email and not email.startswith("@"):
            found.append(Address(name=" ".join(clean_text(display).split()), email=email))
    return found


def _first_address(msg: Message, name: str) -> Address | None:
    return next(iter(_addresses(msg, name)), None)


_MSG_ID = re.compile(r"<([^<>\s]+)>")


def _message_ids(value: str) -> list[str]:
    """Ids in order, without <>; an id written without brackets is taken as one bare token."""
    ids = _MSG_ID.findall(value)
    if not ids and value.strip() and "@" in value:
        ids = value.split()
    return list(dict.fromkeys(i.strip("<>")[:998] for i in ids if i.strip("<>")))


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone: RFC 5322 says the zone is unknown; take UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- bodies -------------------------------------------------------------------------------


def _body_parts(msg: EmailMessage) -> tuple[Message | None, Message | None]:
    try:
        text_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
    except Exception:
        return None, None
    return text_part, html_part


def _part_text(part: Message) -> str:
    payload = _payload_bytes(part)
    return clean_text(_decode_bytes(payload, part.get_content_charset()))


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


# Charsets mail declares whose real content is a superset Python knows under another name:
# mail clients (and every browser, per WHATWG) read "latin-1" as windows-1252, Outlook writes
# Korean as "ks_c_5601-1987", Japanese mail uses the Microsoft variants of its charsets.
_CHARSET_TRIES = {
    "us-ascii": ("cp1252", "latin-1"),
    "ascii": ("cp1252", "latin-1"),
    "iso-8859-1": ("cp1252", "latin-1"),
    "latin-1": ("cp1252", "latin-1"),
    "latin1": ("cp1252", "latin-1"),
    "windows-1252": ("cp1252", "latin-1"),
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"),
    "shift_jis": ("cp932", "shift_jis"),
    "euc-jp": ("euc_jp", "cp932"),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "ks_c_5601-1987": ("cp949",),
    "euc-kr": ("cp949",),
}
# Below this many bytes charset detection guesses wrong more often than windows-1252 does.
_DETECT_MIN = 400
# Declared single-byte charsets that real mail often puts over UTF-8 bytes.
_SINGLE_BYTE = {"us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252"}


def _decode_bytes(data: bytes, declared: str | None) -> str:
    """Bytes to text by the declared charset, else by detection; never raises."""
    if not data:
        return ""
    charset = (declared or "").strip().strip("\"'").lower()
    if (not charset or charset in _SINGLE_BYTE) and not data.isascii():
        try:  # valid non-ASCII UTF-8 is almost never an accident of another charset
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    for name in _CHARSET_TRIES.get(charset, (charset,) if charset else ()):
        try:
            codecs.lookup(name)
            return data.decode(name)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    try:  # the declared charset is unknown or wrong: UTF-8 is what most mail is today
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if len(data) >= _DETECT_MIN:
        best = from_bytes(data[:200_000]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace")
    try:  # too short to detect reliably: the most common 8-bit charset of Western mail
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _keep_img_src(tag: str, attribute: str, value: str) -> str | None:
    """Inline images (cid:) stay; remote images (tracking pixels) and data: URLs go."""
    if tag == "img" and attribute == "src":
        return value if value.strip().lower().startswith("cid:") else None
    return value


def _sanitize_html(html: str) -> str:
    return clean_text(
        nh3.clean(
            html,
            url_schemes={"http", "https", "mailto", "tel", "cid"},
            attribute_filter=_keep_img_src,
            link_rel="noopener noreferrer nofollow",
        )
    )


# --- reply trimming -----------------------------------------------------------------------

# Languages whose reply headers ("On ... wrote:", "Am ... schrieb ...:", "Le ... a écrit :",
# Outlook's "From:/Sent:" in each language) the reply parser knows.
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs", "ja", "ko", "zh")
# Past this the reply parser's regexes get slow; the reply is at the top anyway.
_REPLY_SCAN_LIMIT = 100_000


class _ReplyMessage(ReplyMessage):
    """The maintained parser, with sign-offs ("Thanks,", "Best regards") counted as the start of
    a signature only when they stand alone on their line: "Thanks, that fixed it, but ..." is
    what the customer wrote, not a signature."""

    def _get_language_regex(self, language: str, regex_key: str) -> str:
        pattern: str = super()._get_language_regex(language, regex_key)
        if regex_key == "signatures" and pattern:
            return rf"(?:{pattern})[ \t]*[,.!]?[ \t]*$"
        return pattern


# Lines that end what the sender wrote without being the quote itself: a quoted line with no
# header above it, or a forward's separator ("---------- Forwarded message ---------",
# Apple Mail's "Begin forwarded message:") left above the forwarded header.
_TRAILING_NOISE = re.compile(
    r"^\s*(?:>.*|-{2,}[^-]*-{2,}|(?:begin forwarded message|anfang der weitergeleiteten"
    r" nachricht|début du message réexpédié)\s*:)\s*$",
    re.IGNORECASE,
)


def reply_text(text: str) -> str:
    """What the sender wrote this time: quoted history and signature cut off, or the whole
    text when cutting would leave nothing (a bare forward, a reply written inside the quote)."""
    head = text[:_REPLY_SCAN_LIMIT]
    try:
        parsed: Any = _ReplyMessage(
            text=head, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True
        ).read()
    except Exception:  # a third-party regex engine on arbitrary text: never let it stop intake
        return text.strip()
    replies = parsed.replies
    if not replies or replies[0].headers:  # the message starts with a quoted header
        return text.strip()
    lines = str(replies[0].body).split("\n")
    while lines and (not lines[-1].strip() or _TRAILING_NOISE.match(lines[-1])):
        lines.pop()
    trimmed = "\n".join(lines).strip()
    return clean_text(trimmed) if trimmed else text.strip()


# --- attachments --------------------------------------------------------------------------


def _leaves(part: Message) -> Iterator[Message]:
    """Every leaf part; an attached message is one leaf (a .eml file), not opened up."""
    if part.get_content_maintype() == "message" or not part.is_multipart():
        yield part
        return
    payload = part.get_payload()
    for sub in payload if isinstance(payload, list) else []:
        if isinstance(sub, Message):
            yield from _leaves(sub)


def _attachments(
    msg: Message, skip: tuple[Message | None, Message | None]
) -> Iterator[ParsedAttachment]:
    number = 0
    for part in _leaves(msg):
        if part is msg or any(part is s for s in skip):
            continue
        disposition = (part.get_content_disposition() or "").lower()
        maintype = part.get_content_maintype()
        if maintype == "text" and disposition != "attachment" and not part.get_filename():
            continue  # an alternative body we did not pick (e.g. text/enriched)
        number += 1
        content_type = part.get_content_type()
        content_id = _message_ids(_header(part, "Content-ID")) or [
            _header(part, "Content-ID").strip("<> ")
        ]
        yield ParsedAttachment(
            filename=_filename(part, number, content_type),
            content_type=content_type,
            content=_attachment_bytes(part),
            content_id=content_id[0] or None,
            inline=disposition == "inline" or (disposition != "attachment" and bool(content_id[0])),
        )


def _attachment_bytes(part: Message) -> bytes:
    if part.get_content_maintype() != "message":
        return _payload_bytes(part)
    try:  # the attached message (or report) as it was, without this part's own MIME headers
        whole = part.as_bytes(policy=policy.default.clone(linesep="\r\n"))
    except Exception:
        whole = part.as_string().encode("utf-8", "surrogateescape")
    separator = whole.find(b"\r\n\r\n")
    return whole[separator + 4 :] if separator >= 0 else whole


_EXTENSIONS = {
    "message/rfc822": "eml",
    "text/plain": "txt",
    "text/html": "html",
    "text/calendar": "ics",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "application/pdf": "pdf",
    "message/delivery-status": "txt",
    "text/rfc822-headers": "txt",
}
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def _filename(part: Message, number: int, content_type: str) -> str:
    """The sender's file name made safe (no path, no control characters), or a made-up one."""
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    name = _UNSAFE_NAME.sub("_", clean_text(str(name))).strip(" ._")
    if name:
        return name[:200]
    subtype = content_type.partition("/")[2]
    ext = _EXTENSIONS.get(content_type) or (subtype if subtype.isalnum() else "bin")
    return f"attachment-{number}.{ext}"


# --- auto-replies, bulk mail, bounces -----------------------------------------------------

_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed)|"
    r"mail delivery (failed|failure|system)|returned mail|failure notice|"
    r"could not be delivered|unzustellbar|nicht zustellbar|non remis|non distribuable",
    re.IGNORECASE,
)
_AUTO_SUPPRESS = {"all", "oof", "autoreply"}


def _classify(msg: Message, sender: Address, subject: str) -> tuple[str | None, list[str]]:
    """Why this message must not become a ticket ("bounce", "auto-reply", "bulk"), or None."""
    local = sender.email.partition("@")[0]
    is_report = (
        msg.get_content_type() == "multipart/report"
        and (msg.get_param("report-type") or "").__str__().lower() == "delivery-status"
    )
    failed = _header(msg, "X-Failed-Recipients")
    if (
        is_report
        or failed
        or local == "mailer-daemon"
        or (local == "postmaster" and _BOUNCE_SUBJECT.search(subject))
    ):
        return "bounce", _bounced(msg, failed)
    if _is_auto_reply(msg):
        return "auto-reply", []
    precedence = _header(msg, "Precedence").lower()
    if precedence in {"bulk", "list", "junk"} or _header(msg, "List-Id"):
        return "bulk", []
    if _header(msg, "List-Unsubscribe"):
        return "bulk", []
    return None, []


def _is_auto_reply(msg: Message) -> bool:
    submitted = _header(msg, "Auto-Submitted").lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return True
    if _header(msg, "X-Autoreply") or _header(msg, "X-Autorespond"):
        return True
    if _header(msg, "Precedence").lower() == "auto_reply":
        return True
    suppress = {v.strip().lower() for v in _header(msg, "X-Auto-Response-Suppress").split(",")}
    return bool(suppress & _AUTO_SUPPRESS)


_RECIPIENT_FIELDS = ("original-recipient", "final-recipient")
_QMAIL_RECIPIENT = re.compile(r"^<([^<>\s@]+@[^<>\s]+)>:", re.MULTILINE)


def _bounced(msg: Message, failed_header: str) -> list[str]:
    """The addresses that failed: from the DSN, Exim's header, or a qmail-style body."""
    found = [a.strip().lower() for a in failed_header.split(",") if "@" in a]
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            found += _dsn_recipients(part)
    if not found:
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                found += [a.lower() for a in _QMAIL_RECIPIENT.findall(_part_text(part))]
    return list(dict.fromkeys(found))


def _dsn_recipients(part: Message) -> list[str]:
    blocks = part.get_payload()
    found: list[str] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, Message):
            continue
        action = _header(block, "Action").lower()
        if action and action != "failed":
            continue  # "delayed", "delivered", "relayed": not a failure
        for field in _RECIPIENT_FIELDS:
            value = _header(block, field).rpartition(";")[2].strip().strip("<>").lower()
            if "@" in value:
                found.append(value)
    return found


# --- subjects -----------------------------------------------------------------------------

# Reply and forward prefixes of the mail clients people use, in their languages: Re/Fwd/Fw,
# German AW/WG, Nordic SV/VS/VB/Vs, Dutch Antw/Doorst, French TR/RE, Spanish/Portuguese
# RV/RES/ENC, Italian R/I/RIF, Polish Odp/PD, Turkish YNT/ILT, Finnish VL/VS, Greek, Chinese,
# with counters ("Re[2]:", "Re(2):", "Re^2:") and full-width colons.
_PREFIX = re.compile(
    r"^(?:re|fwd?|r[ée]f\.?|aw|wg|sv|vs|vb|vl|antw|doorst|tr|rv|res|enc|r|i|rif|odp|pd|ynt|ilt|"
    r"vá|tr|ΑΠ|ΣΧΕΤ|ΠΡΘ|回复|回覆|答复|转发|轉寄|轉發)"
    r"\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:\uff1a]\s*",
    re.IGNORECASE,
)
_TICKET_TOKEN = re.compile(r"^\[#\d+\]\s*")


def strip_subject_prefixes(subject: str) -> str:
    """The subject without reply/forward prefixes, keeping the ticket token ("[#12]")."""
    rest = " ".join(subject.split())
    tokens: list[str] = []
    while True:
        prefix = _PREFIX.match(rest)
        token = _TICKET_TOKEN.match(rest)
        if prefix:
            rest = rest[prefix.end() :]
        elif token:
            tokens.append(token.group().strip())
            rest = rest[token.end() :]
        else:
            break
    return " ".join([*dict.fromkeys(tokens), rest]).strip()
