"""Templating: layered variables, errors located by part and line, the sandbox, dialects."""

from __future__ import annotations

import email.policy
import re
from email.message import EmailMessage
from typing import Any

import pytest

from mta.inject.addresses import AddressChecker
from mta.inject.errors import InjectError, RecipientError
from mta.inject.generate import RequestPlan
from mta.inject.schema import parse_request
from mta.inject.templates import Part, TemplateEngine


def make_plan(content: Any, **fields: Any) -> RequestPlan:
    body = {
        "envelope_sender": "sender@example.com",
        "recipients": [{"email": "rcpt@example.com"}],
        "content": content,
        **fields,
    }
    return RequestPlan(
        parse_request(body),
        engine=TemplateEngine(),
        checker=AddressChecker(),
        hostname="mta.test",
        peer_address="127.0.0.1",
        now=0.0,
    )


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(plan: RequestPlan, index: int = 0) -> str:
    message = parsed(plan.generate(index, f"id-{index}").data)
    part = message.get_body(("plain",))
    assert part is not None
    text = str(part.get_content())
    return text.removesuffix("\r\n")  # a single-part message gets a final line break


def compile_error(content: Any, **fields: Any) -> InjectError:
    with pytest.raises(InjectError) as info:
        make_plan(content, **fields)
    return info.value


def test_variables_are_layered_global_then_builtins_then_recipient() -> None:
    plan = make_plan(
        {"text_body": "{{ a }} {{ b }} {{ email }} {{ name }} {{ to_header }} {{ c }}"},
        substitutions={"a": "ga", "b": "gb", "email": "global-email", "name": "global-name"},
        recipients=[
            {"email": "one@example.com", "name": "One", "substitutions": {"b": "rb"}},
            {"email": "two@example.com", "substitutions": {"email": "mine", "c": 3}},
        ],
    )
    assert text_of(plan, 0) == 'ga rb one@example.com One "One" <one@example.com> '
    # Without a name the global one shows through (KumoMTA sets `name` only when given);
    # a recipient's own substitutions win over the built-ins.
    assert text_of(plan, 1) == "ga gb mine global-name <two@example.com> 3"


def test_substitutions_can_be_any_json() -> None:
    plan = make_plan(
        {"text_body": "{% for item in items %}{{ item.n * 2 }},{% endfor %}{{ flag }}"},
        substitutions={"items": [{"n": 1}, {"n": 2}], "flag": True},
    )
    assert text_of(plan) == "2,4,True"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"text_body": "ok", "html_body": "<p>\n\n{{ name }}}</p>\n{% if %}"}, "content.html_body"),
        ({"text_body": "line one\n{{ oops"}, "content.text_body line 2:"),
        ({"text_body": "t", "subject": "{% if x %}"}, "content.subject line 1:"),
        ({"text_body": "t", "headers": {"X-A": "{{ }}"}}, "content.headers['X-A'] line 1:"),
        ({"text_body": "t", "from": {"email": "{{ a", "name": "n"}}, "content.from.email line 1"),
        ("Subject: x\n\n{% for %}", "content line 3:"),
    ],
)
def test_syntax_error_is_422_naming_part_and_line(content: Any, message: str) -> None:
    error = compile_error(content)
    assert error.status == 422
    assert error.message.startswith(message)


def test_syntax_error_line_number_is_the_parts_own() -> None:
    error = compile_error({"text_body": "a\nb", "html_body": "1\n2\n{{ x }\n4"})
    assert error.message.startswith("content.html_body line 3: ")


def test_unknown_filter_is_found_at_compile_time() -> None:
    error = compile_error({"text_body": "fine", "html_body": "{{ name | nosuchfilter }}"})
    assert error.status == 422
    assert error.message == "content.html_body line 1: No filter named 'nosuchfilter'."


def test_template_split_across_parts_is_refused() -> None:
    # Each part is a template of its own, as in KumoMTA.
    error = compile_error({"text_body": "{% if x %}", "html_body": "{% endif %}"})
    assert error.message.startswith("content.text_body line 1:")


def test_runtime_error_fails_only_that_recipient() -> None:
    plan = make_plan(
        {"text_body": "{{ 10 // n }}"},
        recipients=[
            {"email": "a@example.com", "substitutions": {"n": 5}},
            {"email": "b@example.com", "substitutions": {"n": 0}},
            {"email": "c@example.com", "substitutions": {"n": "x"}},
        ],
    )
    assert text_of(plan, 0) == "2"
    with pytest.raises(RecipientError, match="ZeroDivisionError"):
        plan.generate(1, "id-1")
    with pytest.raises(RecipientError, match="template error"):
        plan.generate(2, "id-2")


def test_undefined_filter_in_a_branch_fails_at_render() -> None:
    plan = make_plan(
        {"text_body": "{% if bad %}{{ x | nosuch }}{% endif %}ok"},
        recipients=[
            {"email": "a@example.com", "substitutions": {"bad": False}},
            {"email": "b@example.com", "substitutions": {"bad": True}},
        ],
    )
    assert text_of(plan, 0) == "ok"
    with pytest.raises(RecipientError, match="nosuch"):
        plan.generate(1, "id-1")


def test_undefined_variables_render_empty_like_minijinja() -> None:
    assert text_of(make_plan({"text_body": "[{{ missing }}]"})) == "[]"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "attribute '__class__' of 'str'"),
        ("{{ ''.__class__ }}", "attribute '__class__' of 'str' object is unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "attribute '__init__'"),
        ("{{ items.append(4) }}", "attribute 'append' of 'list' object is unsafe"),
        ("{{ 'x' * 100000000 }}", "a repeated sequence exceeds"),
        ("{{ 2 ** 100000 }}", "a power exceeds"),
        ("{{ '%999999999d' % 1 }}", "a format width exceeds"),
        ("{{ '{:>999999999}'.format(1) }}", "a format width exceeds"),
        ("{{ 'x'.ljust(999999999) }}", "a numeric argument exceeds"),
        ("{{ 'x' | center(999999999) }}", "a numeric argument exceeds"),
        ("{{ lipsum(n=100000) }}", "'lipsum' is undefined"),
        (
            "{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s }}{% endmacro %}{{ d('ab', 40) }}",
            "a value exceeds",
        ),
        (
            "{% macro d(s, n) %}{{ d(s + s, n - 1) if n else s }}{% endmacro %}{{ d('ab', 40) }}",
            "a value exceeds",
        ),
        ("{% set s = 'x' * 1000000 %}{{ s.replace('x', s) }}", "a replacement exceeds"),
        (
            "{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}",
            "the rendered message exceeds",
        ),
    ],
)
def test_sandbox_blocks_escapes_and_huge_allocations(template: str, reason: str) -> None:
    plan = make_plan({"text_body": template}, substitutions={"items": [1, 2, 3]})
    with pytest.raises(RecipientError, match=re.escape(reason)):
        plan.generate(0, "id-0")


def test_sandbox_limits_leave_ordinary_formatting_alone() -> None:
    plan = make_plan(
        {
            "text_body": "{{ 'ab'.ljust(5) }}|{{ '{:>4}'.format(1) }}|{{ 3 * 'ab' }}|"
            "{{ 2 ** 10 }}|{{ 'a' | center(5) }}|{{ '%.2f' | format(3.14159) }}|{{ '%3d' % 7 }}|"
            "{{ 'a' ~ 1 ~ 'b' }}|{{ 'a' + 'b' }}|{{ [1] + [2] }}|{{ 'abc'.replace('b', 'xx') }}"
        }
    )
    assert text_of(plan) == "ab   |   1|ababab|1024|  a  |3.14|  7|a1b|ab|[1, 2]|axxc"


def test_global_substitutions_cannot_be_mutated_by_a_recipient() -> None:
    plan = make_plan(
        {"text_body": "{{ items.pop() if items else '' }}{{ items | length }}"},
        substitutions={"items": [1, 2, 3]},
        recipients=[{"email": "a@example.com"}, {"email": "b@example.com"}],
    )
    for i in range(2):
        with pytest.raises(RecipientError):
            plan.generate(i, f"id-{i}")


def test_html_is_auto_escaped_and_text_is_not() -> None:
    plan = make_plan(
        {"text_body": "{{ v }}", "html_body": "<p>{{ v }} {{ v | safe }}</p>"},
        substitutions={"v": "<b>&</b>"},
    )
    message = parsed(plan.generate(0, "id").data)
    html = message.get_body(("html",))
    assert html is not None
    assert html.get_content() == "<p>&lt;b&gt;&amp;&lt;/b&gt; <b>&</b></p>"
    assert text_of(plan) == "<b>&</b>"


def test_static_dialect_renders_nothing() -> None:
    plan = make_plan(
        {"text_body": "{{ name }} {% raw %}", "subject": "{{ x }}"}, template_dialect="Static"
    )
    message = parsed(plan.generate(0, "id").data)
    assert message["Subject"] == "{{ x }}"
    assert text_of(plan) == "{{ name }} {% raw %}"


def test_handlebars_is_refused_with_422() -> None:
    error = compile_error({"text_body": "{{name}}"}, template_dialect="Handlebars")
    assert error.status == 422
    assert error.message == "template_dialect Handlebars is not supported; use Jinja or Static"


def test_compiled_templates_are_cached_by_source() -> None:
    engine = TemplateEngine(cache_size=2)
    parts = [Part("a", "{{ x }}"), Part("b", "<{{ y }}>", html=True)]
    _static, first = engine.compile(parts, "Jinja")
    _static, again = engine.compile(list(parts), "Jinja")
    assert again is first
    assert first.render({"x": 1, "y": "&"}) == {"a": "1", "b": "<&amp;>"}
    for i in range(2):
        engine.compile([Part("a", f"{{{{ x }}}}{i}")], "Jinja")
    _static, evicted = engine.compile(parts, "Jinja")
    assert evicted is not first


def test_untemplated_parts_are_not_compiled() -> None:
    static, compiled = TemplateEngine().compile([Part("a", "plain"), Part("b", "{{ x }}")], "Jinja")
    assert static == {"a": "plain"}
    assert compiled.keys == ("b",)


def test_nul_in_a_raw_message_template_is_refused() -> None:
    # NUL tags line breaks from values in raw messages (see mta.inject.templates).
    error = compile_error("Subject: {{ s }}\n\na\x00b")
    assert (error.status, error.message) == (422, "content: contains NUL")
