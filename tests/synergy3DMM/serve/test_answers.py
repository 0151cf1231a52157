"""What an analysed photo becomes in an answer (`synergy3DMM.serve.answers`)."""
from __future__ import annotations

from synergy3DMM.serve.answers import safe_stem


def test_upload_names_never_reach_the_file_system():
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("..\\..\\windows\\win.ini") == "win"
    assert safe_stem("a b/../c d.jpg") == "c_d" and safe_stem("") == "photo" and safe_stem("/.../") == "photo"
