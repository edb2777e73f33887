"""The manual page against the program: every option and exit status that udfhost's help prints
is documented in man/udfhost.1, and both manual pages pass mandoc's lint."""
import os
import re
import shutil
import subprocess

from udfhost_test import main, run

SRCDIR = os.environ["UDFHOST_SRCDIR"]
MAN1 = os.path.join(SRCDIR, "man", "udfhost.1")
MAN3 = os.path.join(SRCDIR, "man", "udfhost-sdk.3")
MAN7 = os.path.join(SRCDIR, "man", "udfhost-plugins.7")
MANLIB = os.path.join(SRCDIR, "man", "libudfhost.3")
HEADER = os.path.join(SRCDIR, "src", "udfhost", "udfhost.h")

# Each command's help and the man page section that documents its options.
HELPS = [
    ([], ["--help"], ["OPTIONS"]),
    (["run"], ["run", "--help"], ["run", "DATASET OPTIONS"]),
    (["info"], ["info", "--help"], ["info", "DATASET OPTIONS"]),
    (["plugin-info"], ["plugin-info", "--help"], ["plugin-info"]),
    (["list-plugins"], ["list-plugins", "--help"], ["list-plugins"]),
    (["check-plugin"], ["check-plugin", "--help"], ["check-plugin"]),
]

LONG_RE = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")
SHORT_RE = re.compile(r"(?<![\w-])-[A-Za-z](?![\w-])")
# An option line of a help text: "  -p, --param NAME=VALUE   help" or "      --roi FILE.npy  help".
OPTION_LINE_RE = re.compile(r"^\s+(?:(-[A-Za-z]), )?(--[a-z0-9][a-z0-9-]*)(?: (\S+))?(?:\s{2,}|$)")

ESCAPES = [(r"\-", "-"), (r"\%", ""), (r"\&", ""), (r"\e", "\\"), (r"\(aq", "'"),
           (r"\(mu", "x"), (r"\(bu", "*"), (r"\(lq", '"'), (r"\(rq", '"'), (r"\ ", " ")]
FONT_RE = re.compile(r"\\f(?:\[[^]]*\]|\(..|.)")
ARG_RE = re.compile(r'"((?:[^"]|"")*)"|(\S+)')
ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}


def unescape(text):
    text = FONT_RE.sub("", text)
    for escape, plain in ESCAPES:
        text = text.replace(escape, plain)
    return text


def read_page(path):
    """The page as a list of (macro, text) lines, with escapes and font changes removed: text
    lines have macro None; font macros (.B, .BR, ...) become text lines as they render."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            raw = raw.rstrip("\n")
            if raw.startswith(('.\\"', "'\\\"")):
                continue
            raw = re.sub(r'(?<!\\)\\".*', "", raw)
            if not raw.startswith("."):
                lines.append((None, unescape(raw)))
                continue
            name, _, rest = raw[1:].partition(" ")
            args = [m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
                    for m in ARG_RE.finditer(rest)]
            if name in ALTERNATING:
                lines.append((None, unescape("".join(args))))
            elif name in ("B", "I", "SM", "SB"):
                lines.append((None, unescape(" ".join(args))))
            else:
                lines.append((name, unescape(" ".join(args))))
    return lines


def page_text(lines):
    return "\n".join(text for _, text in lines)


def section(lines, title):
    """The lines of the .SH or .SS section with this title, up to the next heading of the same or
    a higher level."""
    for i, (macro, text) in enumerate(lines):
        if macro in ("SH", "SS") and text == title:
            stop = ("SH",) if macro == "SH" else ("SH", "SS")
            end = next((j for j in range(i + 1, len(lines)) if lines[j][0] in stop), len(lines))
            return lines[i + 1:end]
    raise AssertionError("%s: no section '%s'" % (MAN1, title))


def entries(lines):
    """The .TP paragraphs of these lines as (tag, body text) pairs, in order."""
    out = []
    for i, (macro, _) in enumerate(lines[:-1]):
        if macro != "TP" or lines[i + 1][0] is not None:
            continue
        body = []
        for macro2, text in lines[i + 2:]:
            if macro2 in ("TP", "PP", "P", "LP", "IP", "SH", "SS"):
                break
            if macro2 is None:
                body.append(text)
        out.append((lines[i + 1][1], " ".join(" ".join(body).split())))
    return out


def tags(lines):
    """The tags of the .TP paragraphs of these lines."""
    return [tag for tag, _ in entries(lines)]


def has_token(text, token):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(token), text) is not None


def help_text(args):
    out, _ = run(args)
    return out


def test_every_option_in_the_page(tmp):
    text = page_text(read_page(MAN1))
    seen = set()
    for _, args, _ in HELPS:
        out = help_text(args)
        found = set(LONG_RE.findall(out)) | set(SHORT_RE.findall(out))
        assert "--help" in found and "-h" in found, \
            "udfhost %s: no --help or -h found in the help: has its format changed?\n%s" \
            % (" ".join(args), out)
        seen |= found
    missing = sorted(o for o in seen if not has_token(text, o))
    assert not missing, "%s does not mention %s" % (MAN1, ", ".join(missing))


def test_options_documented_per_command(tmp):
    lines = read_page(MAN1)
    for command, args, titles in HELPS:
        out = help_text(args)
        options = [m.groups() for m in map(OPTION_LINE_RE.match, out.splitlines()) if m]
        assert options, "udfhost %s: no option lines found in the help" % " ".join(args)
        # A command's options are documented in its section and the shared sections it names.
        title = " + ".join(titles)
        section_tags = [t for name in titles for t in tags(section(lines, name))]
        for short, long, arg in options:
            matching = [t for t in section_tags if has_token(t, long)]
            assert matching, "%s, section %s: no .TP entry for %s" % (MAN1, title, long)
            tag = matching[0]
            if short:
                assert has_token(tag, short), \
                    "%s, section %s: entry '%s' lacks the short name %s" % (MAN1, title, tag, short)
            if arg:
                assert arg in tag, \
                    "%s, section %s: entry '%s' lacks the argument %s (as in udfhost %s)" \
                    % (MAN1, title, tag, arg, " ".join(args))
        # And no documented option that the program no longer has.
        known = {long for _, long, _ in options}
        for tag in section_tags:
            for long in LONG_RE.findall(tag):
                assert long in known, "%s, section %s documents %s, which udfhost %s lacks" \
                    % (MAN1, title, long, " ".join(command) or "")


def test_exit_statuses(tmp):
    out = help_text(["--help"])
    m = re.search(r"Exit status:(.*?\.)\s*(?:\n|$)", out, re.S)
    assert m, "udfhost --help prints no 'Exit status:' list:\n" + out
    statuses = re.findall(r"(\d+) ([^,.]+)", " ".join(m.group(1).split()))
    assert len(statuses) >= 3 and statuses[0][0] == "0", "cannot parse: " + m.group(1)
    documented = dict(entries(section(read_page(MAN1), "EXIT STATUS")))
    for number, meaning in statuses:
        assert number in documented, "%s: EXIT STATUS has no entry for %s (%s)" \
            % (MAN1, number, meaning)
        # The entry of that number must say what the help says it means.
        assert meaning.strip().lower() in documented[number].lower(), \
            "%s: EXIT STATUS entry %s does not say '%s'" % (MAN1, number, meaning.strip())
    extra = sorted(set(documented) - {n for n, _ in statuses}, key=int)
    assert not extra, "%s: EXIT STATUS documents %s, which udfhost --help does not list" \
        % (MAN1, ", ".join(extra))


def test_mandoc_lint(tmp):
    mandoc = shutil.which("mandoc")
    if not mandoc:
        print("note: mandoc not found, lint not run (apt-get install mandoc)")
        return
    for page in (MAN1, MAN3, MAN7, MANLIB):
        p = subprocess.run([mandoc, "-T", "lint", "-W", "warning", page], capture_output=True,
                           text=True)
        assert p.returncode == 0 and not p.stdout and not p.stderr, \
            "mandoc -T lint -W warning %s: exit %d\n%s%s" % (page, p.returncode, p.stdout,
                                                            p.stderr)


def test_every_library_function_documented(tmp):
    """Every function udfhost/udfhost.h declares is described in libudfhost(3)."""
    header = open(HEADER, encoding="utf-8").read()
    names = sorted(set(re.findall(r"\b(udfhost_[a-z_]+)\(", header)))
    assert len(names) > 20, names
    page = open(MANLIB, encoding="utf-8").read()
    assert ".SH DESCRIPTION" in page
    synopsis, description = page.split(".SH DESCRIPTION", 1)
    for name in names:
        assert name in synopsis, "libudfhost(3): %s missing from the SYNOPSIS" % name
        assert name in description, "libudfhost(3) does not describe %s" % name


def test_every_bundled_plugin_documented(tmp):
    """Each bundled plugin has a section in udfhost-plugins(7) that names all its parameters."""
    plugin_dir = os.environ["UDFHOST_PLUGIN_PATH"].split(":")[0]
    names = sorted(f[:-3] for f in os.listdir(plugin_dir) if f.endswith(".so"))
    assert "sum" in names, "no bundled plugins found in %s" % plugin_dir
    sections = {}
    current = None
    for line in open(MAN7, encoding="utf-8"):
        if line.startswith(".SS "):
            current = line[4:].strip()
            sections[current] = ""
        elif line.startswith(".SH "):
            current = None
        elif current:
            sections[current] += unescape(line)
    for name in names:
        assert name in sections, "%s: no section .SS %s" % (MAN7, name)
        out, _ = run(["plugin-info", name])
        listed = out.split("\nparameters:", 1)[1].split("\nbuffers:", 1)[0]
        params = re.findall(r"^  (\w+) \(", listed, re.M)
        for param in params:
            assert re.search(r"\b%s\b" % param, sections[name]), \
                "%s: section %s does not document parameter %s" % (MAN7, name, param)


if __name__ == "__main__":
    main([test_every_option_in_the_page, test_options_documented_per_command, test_exit_statuses,
          test_mandoc_lint, test_every_library_function_documented,
          test_every_bundled_plugin_documented])
