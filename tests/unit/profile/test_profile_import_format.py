"""CSV and JSON Lines rows of the bulk import, without infrastructure."""

from __future__ import annotations

import pytest

from profile_service.import_format import BadImportFile, read_csv, read_jsonl


def rows(text: str):
    return list(read_csv(text)[1])


def test_csv_list_columns():
    [row] = rows(
        "email,display_name,roles,skills,availability,languages,mentor_capacity,meeting_format,mentoring_topics\n"
        'a@x.io,Ann,mentee;mentor,"python:4; SQL",0 09:00-12:00;2 14:00-17:00,en;de,2,Video,career;ml\n'
    )
    assert row.rejection is None
    assert row.data == {
        "email": "a@x.io",
        "display_name": "Ann",
        "roles": ["mentee", "mentor"],
        "skills": [{"name": "python", "proficiency": 4}, {"name": "SQL"}],
        "availability": [
            {"weekday": 0, "start": "09:00", "end": "12:00"},
            {"weekday": 2, "start": "14:00", "end": "17:00"},
        ],
        "languages": ["en", "de"],
        "mentor_capacity": 2,
        "mentoring_preferences": {"meeting_format": "video", "topics": ["career", "ml"]},
    }


def test_empty_cells_are_not_given_and_blank_lines_are_not_rows():
    result = rows("email,display_name,department\n\nb@x.io,Bo,\n")
    assert [(r.row, r.data) for r in result] == [(1, {"email": "b@x.io", "display_name": "Bo"})]


def test_malformed_rows_are_rejected_with_row_and_field():
    result = rows(
        "email,display_name,availability,years_experience,skills\n"
        "a@x.io,Ann\n"
        "b@x.io,Bo,Monday 9-12,,\n"
        "c@x.io,Cy,,many,\n"
        "d@x.io,Di,,,python:expert\n"
        "e@x.io,Ed,,,\n"
    )
    got = [(r.row, r.rejection.field if r.rejection else None) for r in result]
    assert got == [(1, "row"), (2, "availability"), (3, "years_experience"), (4, "skills"), (5, None)]
    assert "expected 5 cells, found 2" in result[0].rejection.reason


@pytest.mark.parametrize("header", ["display_name\n", "email,salary\n", "email,email\n", ""])
def test_bad_header_refuses_the_file(header):
    with pytest.raises(BadImportFile):
        read_csv(header)


def test_jsonl_rows():
    text = (
        '{"email": "a@x.io", "display_name": "Ann", "roles": ["mentee"]}\n'
        "\n"
        "{not json\n"
        '["a list"]\n'
        '{"email": "b@x.io", "salary": 3}\n'
        '{"display_name": "no email"}\n'
    )
    result = list(read_jsonl(text))
    assert result[0].data and result[0].row == 1
    assert [(r.row, r.rejection.field) for r in result[1:]] == [(3, "row"), (4, "row"), (5, "salary"), (6, "email")]
