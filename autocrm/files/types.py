"""What a file is, read from its first bytes (never from its name or the client's word), and
which kinds are refused.

``detect`` looks at the head of the content: ``filetype`` knows the binary formats (images,
PDF, archives, executables); what it does not know is told apart here: scripts by their
``#!`` line, HTML and SVG by their opening tag, other text as ``text/plain``, and anything else
as ``application/octet-stream``. Only raster images are ever shown inline (``INLINE_TYPES``):
SVG and HTML can carry scripts.

The deny list (``AUTOCRM_UPLOAD_DENY_TYPES``, comma-separated) names content types
(``application/x-msdownload``) and file-name endings (``.exe``): a Windows batch file is plain
text to any detector, so its name is the only sign of what it is for.
"""

from __future__ import annotations

import filetype

# Enough for every signature ``filetype`` reads (it needs 261 bytes) and to find an SVG's tag
# after an XML prolog and comments.
HEAD_BYTES = 8192
OCTET_STREAM = "application/octet-stream"
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})

DEFAULT_DENY = (
    # Programs and scripts, by content.
    "application/x-msdownload",
    "application/x-executable",
    "application/x-mach-binary",
    "application/x-sharedlib",
    "text/x-shellscript",
    # And by name: what is plain text or a zip to a detector but runs when opened.
    ".exe", ".dll", ".com", ".scr", ".msi", ".msp", ".bat", ".cmd", ".ps1", ".vbs", ".vbe",
    ".js", ".jse", ".wsf", ".wsh", ".hta", ".cpl", ".jar", ".sh", ".bash", ".app", ".apk",
    ".lnk", ".reg",
)  # fmt: skip

_MACH_O = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")


def detect(head: bytes) -> str:
    """The content type of a file that starts with ``head`` (its first ``HEAD_BYTES``)."""
    if head.startswith(_MACH_O):
        return "application/x-mach-binary"
    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    if head.startswith(b"#!"):
        return "text/x-shellscript"
    text = _as_text(head)
    if text is None:
        return OCTET_STREAM
    opening = text.lstrip("\ufeff \t\r\n").lower()
    if "<svg" in opening[:4096] and (opening.startswith(("<svg", "<?xml", "<!--", "<!doctype"))):
        return "image/svg+xml"
    if opening.startswith(("<!doctype html", "<html", "<head", "<body", "<script")):
        return "text/html"
    return "text/plain"


def _as_text(head: bytes) -> str | None:
    """The head as text, if it is UTF-8 with no NUL (a multi-byte character cut at the end of
    the head still counts)."""
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:
            return head[: exc.start].decode("utf-8")
        return None


def deny_list(configured: str | None) -> frozenset[str]:
    """The refused types and endings; None: ``DEFAULT_DENY``, "" refuses nothing."""
    if configured is None:
        return frozenset(DEFAULT_DENY)
    return frozenset(item.strip().lower() for item in configured.split(",") if item.strip())


def refusal(name: str, content_type: str, denied: frozenset[str]) -> str | None:
    """Why a file named ``name`` with that content is refused, or None."""
    if content_type in denied:
        return f"{name}: files of type {content_type} are not accepted (programs and scripts)."
    lowered = name.lower()
    for ending in denied:
        if ending.startswith(".") and lowered.endswith(ending):
            return f"{name}: {ending} files are not accepted (programs and scripts)."
    return None


def is_inline_image(content_type: str) -> bool:
    return content_type in INLINE_TYPES
