"""The README's Python session runs as shown (doctest over its ```pycon blocks, from the top of
the source tree, where its paths point)."""
import doctest
import os
import re

from conftest import SRCDIR


def test_readme_session(monkeypatch):
    text = open(os.path.join(SRCDIR, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```pycon\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(SRCDIR)
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, "README.md", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 30 and result.failed == 0
