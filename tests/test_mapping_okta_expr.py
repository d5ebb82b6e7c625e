"""Okta Expression Language parser and evaluator (examples from Okta's expression language reference)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from connector.mapping.expr import okta as O

USER: dict[str, Any] = {
    "firstName": "Winston",
    "lastName": "Churchill",
    "email": "winston.churchill@gmail.com",
    "login": "winston.churchill@gmail.com",
    "middleInitial": None,
    "salary": 2000000,
    "isContractor": False,
    "city": "San Francisco",
    "groupCode": 123,
    "displayName": "Winston Churchill",
}
APPUSER = {"userName": "wchurchill"}
GROUP = {"name": "Data Engineering", "description": "DE"}

EVAL_CASES = [
    ("user.firstName", "Winston"),
    ("user.firstName + user.lastName", "WinstonChurchill"),
    ('user.firstName + "." + user.lastName', "Winston.Churchill"),
    ("substring(user.firstName, 0, 1) + user.lastName", "WChurchill"),
    ("substring(user.firstName, 0, 1) + substring(user.lastName, 0, 6)", "WChurch"),
    ('toLowerCase(substring( user.firstName, 0, 1)) + "." + toLowerCase(user.lastName)', "w.churchill"),
    ('toUpperCase(substringBefore( substringAfter(user.email, "@"), ".")) + "\\" + substringBefore( user.email, "@")',
     "GMAIL\\winston.churchill"),
    ('user.firstName + " " + (String.len(user.middleInitial) == 0 ? "" : '
     '(String.substring(user.middleInitial, 0, 1) + ". ")) + user.lastName', "Winston Churchill"),
    ('String.append("This is", " a test")', "This is a test"),
    ('String.join(",", "This", "is", "a", "test")', "This,is,a,test"),
    ('String.join("", "This", "is", "a", "test")', "Thisisatest"),
    ('String.len("This")', 4),
    ('String.removeSpaces("This is a test")', "Thisisatest"),
    ('String.replace("This is a test", "is", "at")', "That at a test"),
    ('String.replaceFirst("This is a test", "is", "at")', "That is a test"),
    ('String.stringContains("This is a test", "test")', True),
    ("String.stringContains(\"This is a test\", \"doesn'tExist\")", False),
    ('String.stringSwitch("This is a test", "default", "key1", "value1")', "default"),
    ('String.stringSwitch("First match wins", "default", "absent", "value1", "wins", "value2", "match", "value3")',
     "value2"),
    ('String.substring("This is a test", 2, 9)', "is is a"),
    ('String.substringAfter("abc@okta.com", "@")', "okta.com"),
    ('String.substringBefore("abc@okta.com", "@")', "abc"),
    ('String.toUpperCase("This")', "THIS"),
    ('String.toLowerCase("ThiS")', "this"),
    ("String.toLowerCase(user.missing)", None),
    ("Arrays.add({10, 20, 30}, 40)", [10, 20, 30, 40]),
    ("Arrays.remove({10, 20, 30}, 20)", [10, 30]),
    ("Arrays.clear({10, 20, 30})", []),
    ("Arrays.get({0, 1, 2}, 0)", 0),
    ("Arrays.flatten(10, {20, 30}, 40)", [10, 20, 30, 40]),
    ("Arrays.contains({10, 20, 30}, 10)", True),
    ("Arrays.contains({10, 20, 30}, 50)", False),
    ("Arrays.size({10, 20, 30})", 3),
    ("Arrays.size(NULL)", 0),
    ("Arrays.isEmpty(NULL)", True),
    ('Arrays.toCsvString({"This", "is", " a ", "test"})', "This,is, a ,test"),
    ('Convert.toInt("1234")', 1234),
    ("Convert.toInt(123.6)", 124),
    ("user.groupCode == 123 ? 'Sales' : 'Other'", "Sales"),
    ('user.city == "San Francisco"', True),
    ("user.salary >= 1000000", True),
    ("!user.isContractor", True),
    ("user.salary > 1000000 AND !user.isContractor", True),
    ("user.salary > 1000000 && user.isContractor", False),
    ("user.isContractor || user.salary < 5", False),
    ('user.middleInitial + "a"', "a"),  # null + "a" is "a", like Okta
    ("user.middleInitial + user.missing", None),
    ("user.nope ?: user.login", "winston.churchill@gmail.com"),
    ("user.firstName ?: user.login", "Winston"),
    ("'It''s'", "It's"),
    ('"say ""hi"""', 'say "hi"'),
    ("appuser.userName", "wchurchill"),
    ("group.name", "Data Engineering"),
    ("app.domain", None),
    ("zendesk.firstName", None),  # an explicitly named app: unknown offline, so null
    ('isMemberOfGroupName("Astro Admins") ? "admin" : "user"', "user"),
    ("hasWorkdayUser() ? findWorkdayUser().employeeID : null", None),
    ('user.getLinkedObject("manager").lastName', None),
    ("true && !false", True),
    ("user.a == null", True),
]


@pytest.mark.parametrize(("text", "expected"), EVAL_CASES)
def test_evaluate(text: str, expected: Any) -> None:
    assert O.evaluate(O.parse(text), USER, APPUSER, GROUP) == expected


def test_group_membership_when_given() -> None:
    expr = O.parse('isMemberOfGroupName("Astro Admins") ? "admin" : "user"')
    assert O.evaluate(expr, USER, groups=["Astro Admins"]) == "admin"
    assert O.evaluate(O.parse('isMemberOfGroup("00g1")'), USER, group_ids=["00g1"]) is True
    assert O.evaluate(O.parse('isMemberOfGroupNameStartsWith("Astro")'), USER, groups=["Astro Users"]) is True


def test_tenant_only_functions_say_so() -> None:
    with pytest.raises(O.ExpressionError, match="cannot be evaluated offline"):
        O.evaluate(O.parse('Iso3166Convert.toAlpha2("IND")'), USER)


def test_substring_out_of_range_is_an_error_like_java() -> None:
    with pytest.raises(O.ExpressionError, match="out of range"):
        O.evaluate(O.parse('String.substring("abc", 0, 9)'), USER)


ERROR_CASES = [
    ("", 1, "empty expression"),
    ("user.", 6, "expected an attribute name after 'user.'"),
    ("usr.firstName", 1, "unknown object 'usr'"),
    ("String.toLowercase(user.x)", 1, "unknown function 'String.toLowercase'"),
    ("String.toLowerCase(user.x", 19, "unclosed '(' of String.toLowerCase"),
    ("toLowerCase(user.x))", 20, "unbalanced ')'"),
    ('"abc', 1, "unterminated string"),
    ("'abc", 1, "unterminated string"),
    ('user.firstName = "a"', 16, "unexpected character '='"),
    ('user.a ? "b"', 8, "incomplete conditional"),
    ("String.substringBefore(user.email)", 1, "String.substringBefore takes 2 arguments, got 1"),
    ("String.toUpperCase()", 1, "String.toUpperCase takes 1 argument, got 0"),
    ("user.a +", 9, "a value is missing"),
    ("user.a user.b", 8, "after a complete expression"),
    ("firstName", 1, "unknown name 'firstName'"),
    ("Strng.len(\"a\")", 1, "unknown function 'Strng.len'"),
    ("[userPrincipalName]", 1, "unexpected character '['"),
    ("String.len", 11, "is a function: missing '('"),
    ("(user.a", 1, "unclosed '('"),
    ("{1, 2", 1, "unclosed '{'"),
    ("user.a & user.b", 8, "unexpected character '&'"),
    ("user.email.toLowerCase()", 12, "method calls on a value are not supported"),
    ("user.a - 1", 8, "subtraction"),
    ("String.len(,)", 12, "missing argument"),
    ("isMemberOfGroupname(\"x\")", 1, "unknown function"),
]


@pytest.mark.parametrize(("text", "column", "message"), ERROR_CASES)
def test_parse_errors(text: str, column: int, message: str) -> None:
    with pytest.raises(O.ExpressionError) as info:
        O.parse(text)
    assert message in info.value.message
    assert info.value.column == column


@pytest.mark.parametrize(("text", "hint"), [
    ("usr.firstName", "did you mean user.firstName?"),
    ("String.toLowercase(user.x)", "did you mean String.toLowerCase?"),
    ("Strng.len(\"a\")", "did you mean String.len?"),
    ("isMemberOfGroupname(\"x\")", "did you mean isMemberOfGroupName?"),
    ("user.a & user.b", "&&"),
    ("firstName", "user.firstName"),
])
def test_hints(text: str, hint: str) -> None:
    with pytest.raises(O.ExpressionError) as info:
        O.parse(text)
    assert info.value.hint is not None and hint in info.value.hint


FORMAT_CASES = [
    ("user.firstName+' '+user.lastName", 'user.firstName + " " + user.lastName'),
    ("(user.a ?: 'x') + 'y'", '(user.a ?: "x") + "y"'),
    ("!(user.isContractor || user.salary < 5)", "!(user.isContractor || user.salary < 5)"),
    ("user.a == null ? 'x' : user.b == 'y' ? 'z' : 'w'", 'user.a == null ? "x" : user.b == "y" ? "z" : "w"'),
    ("user.a AND user.b OR user.c", "user.a && user.b || user.c"),
    ("user.a && (user.b || user.c)", "user.a && (user.b || user.c)"),
    ("'It''s'", '"It\'s"'),
    ('"a""b"', '"a""b"'),
    ("{1, 2.5, true, null}", "{1, 2.5, true, null}"),
]


@pytest.mark.parametrize(("text", "canonical"), FORMAT_CASES)
def test_format(text: str, canonical: str) -> None:
    expr = O.parse(text)
    assert O.format(expr) == canonical
    assert O.format(O.parse(canonical)) == canonical


def test_attributes_are_listed() -> None:
    expr = O.parse('user.firstName + String.toLowerCase(appuser.x) + (group.name ?: "")')
    assert [(p.root, p.name) for p in O.attributes(expr)] == [("user", "firstName"), ("appuser", "x"),
                                                             ("group", "name")]
    assert [c.qualified for c in O.calls(expr)] == ["String.toLowerCase"]


def test_expressions_past_the_stack_are_errors_not_crashes(tmp_path: Any) -> None:
    """63 nested calls, or 1,000 `+` terms in a row, overflowed Python's stack in the parser or in a reader of the
    tree: validate exited 70 with a crash log. Now each is a finding at its line; the bounds leave real mappings
    (a few levels, a few terms) far inside."""
    from connector.cli import main

    deep = "user.firstName"
    for _ in range(63):
        deep = f"String.toUpperCase({deep})"
    long = " + ".join(["user.firstName"] * 1000)
    for source, message in ((deep, "nested too deeply (more than 32 levels)"),
                            (long, "too long: more than 100 operators or levels in a row")):
        with pytest.raises(O.ExpressionError, match=re.escape(message)):
            O.parse(source)
        path = tmp_path / "m.yaml"
        path.write_text(f"idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
                        f"  - target: displayName\n    source: '{source}'\n")
        assert main(["validate", str(path)]) == 1
    fine = "user.firstName"
    for _ in range(31):
        fine = f"String.toUpperCase({fine})"
    assert len(O.attributes(O.parse(fine))) == 1
    assert len(O.attributes(O.parse(" + ".join(["user.firstName"] * 99)))) == 99
