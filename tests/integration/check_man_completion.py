# SPDX-License-Identifier: MIT
"""Man pages and bash completion cannot drift from the tools' help text.

For xmeshctl, xmesh-agent and xmesh-cni: every option, object and command
the help names is in the man page and in the completion, and every one the
man page or the completion names is in the help. Usage:
  check_man_completion.py BIN_DIR MAN_DIR COMPLETION_FILE
"""
import re
import subprocess
import sys

BIN, MAN, COMP = sys.argv[1:4]
errors = []


def run(*args):
    p = subprocess.run(args, capture_output=True, text=True)
    return p.stdout + p.stderr


def man_text(name):
    """The page's words: roff requests and font escapes removed, \\- as -;
    each section starts with a line "@SH NAME"."""
    out = []
    for line in open("%s/%s.8" % (MAN, name)):
        if line.startswith('.\\"'):
            continue
        if line.startswith(".SH "):
            out.append("@SH " + line[4:])
            continue
        line = re.sub(r"^\.[A-Z]{1,2}\s?", "", line)
        line = re.sub(r"\\f[BIRP]", "", line).replace("\\-", "-").replace("\\e", "\\")
        out.append(line.replace('"', ""))
    return "".join(out)


def man_section(text, name):
    m = re.search(r"^@SH %s\n(.*?)(?=^@SH |\Z)" % name, text, re.S | re.M)
    return m.group(1) if m else ""


def flags(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])", text))


def comp_function(name):
    text = open(COMP).read()
    m = re.search(r"^%s\(\)\n\{\n(.*?)^\}" % re.escape(name), text, re.S | re.M)
    if not m:
        errors.append("completion: no function %s" % name)
        return ""
    return m.group(1)


def same(what, a_name, a, b_name, b):
    for x in sorted(a - b):
        errors.append("%s: %s has '%s', %s has not" % (what, a_name, x, b_name))
    for x in sorted(b - a):
        errors.append("%s: %s has '%s', %s has not" % (what, b_name, x, a_name))


def tool_options(tool, help_args, comp_name):
    """The tool's help, man page and completion; checks that all three name the same options."""
    help_text = run(BIN + "/" + tool, *help_args)
    man = man_text(tool)
    comp = comp_function(comp_name)
    what = "%s options" % tool
    where = " ".join(help_args)
    same(what, where, flags(help_text), "man OPTIONS", flags(man_section(man, "OPTIONS")))
    same(what, where, flags(help_text), "completion",
         set(re.search(r'options="([^"]*)"', comp).group(1).split()))
    return help_text, man, comp


# ---- xmesh-agent ----
help_text, man, comp = tool_options("xmesh-agent", ["--help"], "_xmesh_agent")
for word in ("uninstall",):
    for where, text in (("--help", help_text), ("man", man), ("completion", comp)):
        if word not in text:
            errors.append("xmesh-agent: '%s' missing from %s" % (word, where))

# ---- xmesh-cni ----
help_text, man, comp = tool_options("xmesh-cni", ["conflist", "help"], "_xmesh_cni")
help_cmds = set(re.findall(r"xmesh-cni conflist (\w+)", help_text))
man_cmds = set(re.findall(r"xmesh-cni conflist (\w+)", man_section(man, "SYNOPSIS")))
same("xmesh-cni conflist commands", "conflist help", help_cmds, "man SYNOPSIS", man_cmds)
comp_cmds = set(re.search(r'2\) COMPREPLY=\(\$\(compgen -W "([^"]*)"', comp).group(1).split())
same("xmesh-cni conflist commands", "conflist help", help_cmds | {"help"}, "completion", comp_cmds)

# ---- xmeshctl ----
help_text = run(BIN + "/xmeshctl", "help")
man = man_text("xmeshctl")
comp = comp_function("_xmeshctl")
objects = set(re.search(r"OBJECT := \{([^}]*)\}", help_text).group(1).replace("|", " ").split())
options = flags(re.search(r"OPTIONS := \{([^}]*)\}", help_text).group(1))
same("xmeshctl options", "help", options, "man OPTIONS", flags(man_section(man, "OPTIONS")))
same("xmeshctl options", "help", options, "completion",
     set(re.search(r'options="([^"]*)"', comp).group(1).split()))
man_objects = set(re.search(r"OBJECT\s*:=\s*\{([^}]*)\}", man).group(1).replace("|", " ").split())
same("xmeshctl objects", "help", objects, "man SYNOPSIS", man_objects)
same("xmeshctl objects", "help", objects | {"help"}, "completion",
     set(re.search(r'objects="([^"]*)"', comp).group(1).split()))
comp_cmds = dict(re.findall(r'^\s*(\w+)\) cmds="([^"]*)"', comp, re.M))
same("xmeshctl objects", "help", objects, "completion's commands", set(comp_cmds))
man_cmds = man_section(man, "COMMANDS")
man_pairs = set(re.findall(r"^(%s) ([a-z]+)" % "|".join(sorted(objects)), man_cmds, re.M))
help_pairs = set()
for obj in sorted(objects):
    usage = run(BIN + "/xmeshctl", obj, "help").splitlines()[0]
    rest = usage.split("xmeshctl %s" % obj, 1)[1].strip()
    words = set(re.findall(r"(?<![\w:./-])([a-z]+)(?![\w:./-])", rest))
    if rest.startswith("{"):
        cmds = {alt.split()[0] for alt in rest.strip("{} ").split("|")}
    elif rest.startswith("[show]"):
        cmds = {"show"}
    elif re.match(r"[a-z]+\b", rest):
        cmds = {rest.split()[0]}
    else:
        cmds = set()
    help_pairs |= {(obj, c) for c in cmds}
    c_words = set(comp_cmds.get(obj, "").split()) - {"help"}
    # first-level commands all completed; nothing completed that the help does not name
    for c in sorted(cmds - c_words):
        errors.append("xmeshctl %s %s: in help, not completed" % (obj, c))
    for c in sorted(c_words - words):
        errors.append("xmeshctl %s %s: completed, not in help" % (obj, c))
    for w in sorted(words):
        if w not in comp:
            errors.append("xmeshctl %s: keyword '%s' of the help is not completed" % (obj, w))
        if not re.search(r"^%s\b.*\b%s\b" % (obj, w), man_cmds, re.M):
            errors.append("xmeshctl %s: keyword '%s' of the help is not in the man page" % (obj, w))
same("xmeshctl commands", "help", help_pairs, "man COMMANDS",
     {p for p in man_pairs if p[1] not in ("interval", "count")} | set())

if errors:
    print("\n".join(errors))
    sys.exit(1)
print("man pages and completion match the help of xmeshctl, xmesh-agent, xmesh-cni")
