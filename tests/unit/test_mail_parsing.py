"""Incoming mail parsing: each real-world-shaped corpus message read as an agent would want it.

What a customer sees as "my email" (subject, sender, what they just wrote, their files) must
come through every client's quirks: encodings, charsets declared wrong, quoted history in each
client's style. Mail that must never become a ticket (auto-replies, lists, bounces) is named.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from autocrm.mail.html_text import to_text
from autocrm.mail.parsing import (
    Address,
    ParsedEmail,
    UnparseableEmail,
    parse_email,
    strip_subject_prefixes,
)
from tests.mail_messages import big_message, build_message, corpus_names, load


def parse(name: str) -> ParsedEmail:
    return parse_email(load(name))


def test_gmail_new_mail() -> None:
    mail = parse("gmail_new")
    assert mail.sender == Address("María López", "maria.lopez@gmail.com")
    assert mail.to == [Address("", "support@acme.test")]
    assert mail.subject == "Printer on the 3rd floor prints blank pages"
    assert mail.message_id == "CAJ8zQ4b2kFq9xw0TnE3JbTtVQ3K+Yd1wX5a9Xr0vY8nQe4b7Ng@mail.gmail.com"
    assert mail.in_reply_to == [] and mail.references == []
    assert mail.date == datetime(2026, 11, 30, 9, 2, 10, tzinfo=UTC)
    assert mail.text.startswith("Hello,\n\nsince this morning the printer")
    assert "Could someone have a look?" in mail.reply_text
    assert mail.html is not None and "<div>Hello,</div>" in mail.html
    assert mail.auto is None and mail.attachments == []
    assert mail.size == len(load("gmail_new"))


def test_gmail_reply_keeps_only_the_new_text_and_threads() -> None:
    mail = parse("gmail_reply")
    assert mail.reply_text == "It works again, thank you! The page counter says 4711 now."
    assert "we cleaned the drum unit" in mail.text
    assert mail.in_reply_to == ["ticket-12.reply-3@acme.test"]
    assert mail.references == [
        "CAJ8zQ4b2kFq9xw0TnE3JbTtVQ3K+Yd1wX5a9Xr0vY8nQe4b7Ng@mail.gmail.com",
        "ticket-12.reply-3@acme.test",
    ]
    assert mail.to == [Address("Acme Support", "support+t12.f3a9@acme.test")]
    assert mail.cc == [Address("Tom Becker", "tom.becker@example.org")]
    assert strip_subject_prefixes(mail.subject) == (
        "[#12] Printer on the 3rd floor prints blank pages"
    )


def test_gmail_reply_in_french() -> None:
    mail = parse("gmail_reply_fr")
    assert mail.subject == "Réf. : TR: [ticket #40] Facture d\u2019octobre"
    assert mail.reply_text == "Bonjour,\n\nMerci, la facture est bien arrivée."


@pytest.mark.parametrize(
    ("name", "reply", "quoted"),
    [
        (
            "outlook_reply_original_message",
            "Hello,\n\nthe laptop still shows a black screen after the BIOS logo. I tried the "
            "recovery key, no change.\n\nAnna Weber",
            "hold the power button",
        ),
        (
            "outlook_reply_from_sent",
            "Hi,\n\nthe new address is Storgatan 12, 114 55 Stockholm. Please use it from the "
            "next invoice on \u2013 thanks!\n\nPeter",
            "which address should we use",
        ),
        (
            "thunderbird_reply",
            "Hi,\n\nI updated the client to 5.2 as you suggested, the connection has been\n"
            "stable for two hours now. You can close the ticket.",
            "please update the VPN client",
        ),
        (
            "thunderbird_reply_de",
            "Hallo,\n\ndas neue Passwort funktioniert, vielen Dank für die schnelle Hilfe.",
            "wir haben Ihr Passwort",
        ),
        (
            "html_only_reply",
            "Yes, the export works now.\nOne more thing: the dates are in US format.\n\nNora",
            "Please try the export again",
        ),
    ],
)
def test_replies_lose_quoted_history_and_signature(name: str, reply: str, quoted: str) -> None:
    mail = parse(name)
    assert mail.reply_text == reply
    assert quoted in mail.text
    assert quoted not in mail.reply_text
    assert "Tom Becker\nIT coordinator" not in mail.reply_text  # the "-- " signature


def test_outlook_html_is_sanitized() -> None:
    mail = parse("outlook_reply_original_message")
    assert mail.sender == Address("Weber, Anna", "anna.weber@corp.example.com")
    assert mail.html is not None
    assert "<script" not in mail.html and "alert(1)" not in mail.html
    assert "<style" not in mail.html and "MsoNormal {" not in mail.html
    assert "black screen" in mail.html


def test_remote_images_are_dropped_but_links_stay() -> None:
    mail = parse("newsletter")
    assert mail.html is not None
    assert "open.gif" not in mail.html  # the tracking pixel
    assert "track()" not in mail.html and "onclick" not in mail.html
    assert 'href="https://weekly.example.com/view/123"' in mail.html
    outlook = parse("outlook_reply_from_sent")
    assert outlook.html is not None and "tracker.example.net" not in outlook.html


def test_windows_1252_quoted_printable() -> None:
    assert "next invoice on \u2013 thanks!" in parse("outlook_reply_from_sent").text


def test_newsletter_and_list_mail_are_bulk() -> None:
    newsletter = parse("newsletter")
    assert newsletter.auto == "bulk"
    assert newsletter.subject == "🚀 This week: 5 tips for faster tickets"
    listmail = parse("list_mail")
    assert listmail.auto == "bulk"
    assert listmail.sender.email == "hannes@example.net"


def test_out_of_office_is_an_auto_reply() -> None:
    mail = parse("out_of_office")
    assert mail.auto == "auto-reply"
    assert mail.text.startswith("Ich bin bis zum 14.12. nicht im Büro.")  # base64 UTF-8


def test_dsn_bounce_names_the_failed_recipient_only() -> None:
    mail = parse("bounce_dsn")
    assert mail.auto == "bounce"
    assert mail.sender.email == "mailer-daemon@mx.acme.test"
    assert mail.bounced == ["old.customer@gone.example"]  # not the merely delayed one


def test_forwarded_mail_is_kept_as_an_eml_attachment() -> None:
    mail = parse("forwarded")
    assert mail.reply_text == "Can you tell me what is wrong with my address? See the mail below."
    [forwarded] = mail.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "attachment-1.eml"
    inner = parse_email(forwarded.content)
    assert inner.subject == "Your order #98765 could not be shipped"
    assert inner.sender.email == "noreply@shop.example.com"
    assert "house number is missing" in inner.text


def test_inline_image_keeps_its_content_id() -> None:
    mail = parse("inline_image")
    [image] = mail.attachments
    assert image.filename == "screenshot.png"
    assert image.content_type == "image/png"
    assert image.content.startswith(b"\x89PNG") and len(image.content) == 70
    assert image.content_id == "part1.Zx8Qm2Lp.screenshot@example.com"
    assert image.inline is True
    assert mail.html is not None and 'src="cid:part1.Zx8Qm2Lp.screenshot@example.com"' in mail.html
    assert mail.text.startswith("When I press Save I get this error:")


def test_attachment_names_rfc2231_rfc2047_unsafe_and_missing() -> None:
    mail = parse("attachment_rfc2231")
    names = [(a.filename, a.content_type, len(a.content), a.inline) for a in mail.attachments]
    assert names == [
        ("Rechnung März 2026.pdf", "application/pdf", 125, False),
        ("Lieferschein Nr. 12345 \u2013 Größe XL.pdf", "application/pdf", 125, False),
        ("Übersicht.xlsx", "application/octet-stream", 202, False),
        ("etc_passwd", "application/octet-stream", 10, False),
        ("attachment-5.jpg", "image/jpeg", 60, False),
    ]
    assert mail.attachments[0].content.startswith(b"%PDF-1.4")
    assert mail.reply_text == "Anbei die Rechnung für März und der Lieferschein."


def test_latin1_quoted_printable() -> None:
    mail = parse("latin1_qp")
    assert mail.sender == Address("François Béranger", "francois.beranger@example.fr")
    assert mail.subject == "Problème d'accès à l'espace client"
    assert "indique « accès refusé »." in mail.text


def test_iso_2022_jp() -> None:
    mail = parse("iso2022jp")
    assert mail.sender == Address("山田 太郎", "taro.yamada@example.co.jp")
    assert mail.subject == "プリンターが動きません"
    assert "3階のプリンターが動きません。" in mail.text


def test_raw_8bit_utf8_headers() -> None:
    mail = parse("utf8_raw_headers")
    assert mail.sender == Address("Łukasz Żółkiewski", "lukasz@example.pl")
    assert mail.subject == "Zażółć gęślą jaźń — błąd logowania"
    assert mail.cc == [
        Address("Zoë Ångström", "zoe@example.se"),
        Address("Ærlig, Åse", "ase@example.no"),
    ]
    assert mail.to == [Address("Ünal Support", "support@acme.test")]


@pytest.mark.parametrize(
    ("name", "sender_name", "subject", "fragment"),
    [
        ("wrong_charset", "Anders Berg", "Fejl i rapport", "Ærø viser forkerte beløb — se"),
        (
            "wrong_charset_latin1_as_utf8",
            "Ines García",
            "Contraseña olvidada",
            "mi contraseña y no recibo el correo de recuperación. Gracias.",
        ),
        ("unknown_charset", "Zed", "Qapla'", "Café is broken."),
    ],
)
def test_wrong_or_unknown_charset_still_reads(
    name: str, sender_name: str, subject: str, fragment: str
) -> None:
    mail = parse(name)
    assert mail.sender.name == sender_name
    assert mail.subject == subject
    assert fragment in mail.text


def test_no_nul_or_surrogate_reaches_the_database() -> None:
    for name in corpus_names():
        if name == "garbage":
            continue
        mail = parse(name)
        texts = [mail.subject, mail.text, mail.reply_text, mail.html or "", mail.sender.name]
        texts += [a.filename for a in mail.attachments]
        for text in texts:
            text.encode("utf-8")  # raises on a lone surrogate
            assert "\x00" not in text, name


@pytest.mark.parametrize(
    "raw",
    [
        load("garbage"),
        b"",
        b"   \r\n",
        b"Subject: no sender\r\n\r\nbody",
        b"From: not an address\r\nSubject: x\r\n\r\nbody",
    ],
)
def test_unusable_bytes_raise_unparseable(raw: bytes) -> None:
    with pytest.raises(UnparseableEmail):
        parse_email(raw)


@pytest.mark.parametrize(
    ("headers", "auto"),
    [
        ({"Auto-Submitted": "auto-generated"}, "auto-reply"),
        ({"Auto-Submitted": "no"}, None),
        ({"Precedence": "bulk"}, "bulk"),
        ({"Precedence": "junk"}, "bulk"),
        ({"Precedence": "list"}, "bulk"),
        ({"X-Autoreply": "yes"}, "auto-reply"),
        ({"X-Autorespond": "Out of office"}, "auto-reply"),
        ({"X-Auto-Response-Suppress": "DR, OOF"}, "auto-reply"),
        ({"X-Auto-Response-Suppress": "DR, RN, NRN"}, None),
        ({"List-Id": "<team.lists.example.org>"}, "bulk"),
        ({"List-Unsubscribe": "<mailto:u@example.org>"}, "bulk"),
        ({"X-Failed-Recipients": "Gone@Example.org"}, "bounce"),
        ({}, None),
    ],
)
def test_auto_classification_by_header(headers: dict[str, str], auto: str | None) -> None:
    raw = build_message("a@example.com", "support@acme.test", "Hello", "Hi", headers=headers)
    assert parse_email(raw).auto == auto


def test_postmaster_failure_notice_is_a_bounce_but_a_postmaster_question_is_not() -> None:
    bounce = build_message(
        ("Mail Delivery Subsystem", "postmaster@mx.example.org"),
        "support@acme.test",
        "Delivery Status Notification (Failure)",
        "Delivery failed:\n\n<lost@example.org>: mailbox unavailable\n",
    )
    mail = parse_email(bounce)
    assert (mail.auto, mail.bounced) == ("bounce", ["lost@example.org"])
    question = build_message("postmaster@example.org", "support@acme.test", "DNS change", "Hi")
    assert parse_email(question).auto is None


def test_build_message_round_trip() -> None:
    raw = build_message(
        ("Jürgen Ä", "Juergen@Example.de"),
        ["support@acme.test", ("Bob, B", "bob@example.org")],
        "Re: [#3] Größe",
        "Neue Antwort\n\nOn Mon, 1 Dec 2026 at 10:00, Support <support@acme.test> wrote:\n> alt\n",
        message_id="m1@example.de",
        in_reply_to="<r1@acme.test>",
        references=["r0@acme.test", "<r1@acme.test>"],
        cc=[("Carla", "carla@example.org")],
        attachments=[("Größe.pdf", "application/pdf", b"%PDF-1.4 x")],
        html="<p>Neue Antwort</p>",
    )
    mail = parse_email(raw)
    assert mail.sender == Address("Jürgen Ä", "juergen@example.de")
    assert mail.to == [Address("", "support@acme.test"), Address("Bob, B", "bob@example.org")]
    assert mail.cc == [Address("Carla", "carla@example.org")]
    assert (mail.message_id, mail.in_reply_to) == ("m1@example.de", ["r1@acme.test"])
    assert mail.references == ["r0@acme.test", "r1@acme.test"]
    assert mail.subject == "Re: [#3] Größe"
    assert mail.reply_text == "Neue Antwort"
    assert mail.html == "<p>Neue Antwort</p>\n"
    [pdf] = mail.attachments
    assert (pdf.filename, pdf.content_type, pdf.content) == (
        "Größe.pdf",
        "application/pdf",
        b"%PDF-1.4 x",
    )


def test_a_25_mb_message_parses_with_its_attachment_whole() -> None:
    raw = big_message(25)
    assert len(raw) > 25 * 1024 * 1024
    mail = parse_email(raw)
    assert mail.size == len(raw)
    assert mail.reply_text == "The full logs are attached."
    [logs] = mail.attachments
    assert logs.filename == "logs.bin"
    assert len(logs.content) == 25 * 1024 * 1024 * 3 // 4


def test_a_message_that_is_only_a_forward_keeps_its_whole_text() -> None:
    body = (
        "---------- Forwarded message ---------\nFrom: Shop <shop@example.com>\n"
        "Date: Mon, 30 Nov 2026 at 20:00\nSubject: Order\nTo: <me@example.com>\n\n"
        "Your order is late.\n"
    )
    mail = parse_email(build_message("me@example.com", "support@acme.test", "Fwd: Order", body))
    assert "Your order is late." in mail.reply_text


def test_sign_off_words_inside_a_sentence_are_not_a_signature() -> None:
    body = "Hi,\n\nThanks, that fixed the login. But now:\n- export fails\n- search is slow\n"
    mail = parse_email(build_message("c@example.com", "support@acme.test", "x", body))
    assert mail.reply_text == body.strip()


def test_dates_without_zone_or_broken_are_handled() -> None:
    base = {"sender": "a@example.com", "to": "support@acme.test", "subject": "s", "body": "b"}
    naive = parse_email(build_message(**base, date="Mon, 30 Nov 2026 10:00:00 -0000"))
    assert naive.date == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    broken = parse_email(build_message(**base, date="yesterday at noon"))
    assert broken.date is None


@pytest.mark.parametrize(
    ("subject", "stripped"),
    [
        ("Re: Fwd: AW: WG: SV: [#12] Printer", "[#12] Printer"),
        ("RE:RE: Hello", "Hello"),
        ("Re[2]: [#3] Re: Export", "[#3] Export"),
        ("Antw: Doorst: Factuur", "Factuur"),
        ("TR : Réf. : Facture", "Facture"),
        ("RV: RES: ENC: Pedido", "Pedido"),
        ("Odp: PD: Faktura", "Faktura"),
        ("回复\uff1a测试", "测试"),
        ("  Re:   spaced    out  ", "spaced out"),
        ("[#5] Re: [#5] Printer", "[#5] Printer"),
        ("Refund request", "Refund request"),
        ("Reminder: invoice", "Reminder: invoice"),
        ("", ""),
    ],
)
def test_strip_subject_prefixes(subject: str, stripped: str) -> None:
    assert strip_subject_prefixes(subject) == stripped


def test_html_to_text_keeps_paragraphs_lists_and_quotes() -> None:
    html = (
        "<p>Hello&nbsp;there,</p><p>line one<br>line two</p><ul><li>a</li><li>b</li></ul>"
        "<blockquote><p>quoted</p></blockquote><script>x()</script>"
    )
    assert to_text(html) == "Hello there,\n\nline one\nline two\n\n- a\n- b\n\n> quoted"
