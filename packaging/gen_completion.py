#!/usr/bin/env python3
"""Writes zen's bash completion from the binary's own --help: the subcommands of `zen --help`,
and for each subcommand its options, which of them take a value, and that value's set ({...},
as CLI11 prints an IsMember check such as --arch's) or kind (a FILE, a user for --user).

Usage: gen_completion.py ZEN_BINARY TEMPLATE OUTPUT
"""

import os
import re
import subprocess
import sys

# An option line of CLI11's help: two spaces, the names joined by commas, then either one space
# and the value's type in capitals (TEXT:{a,b}=default), or a flag's notes (Excludes: --inetd),
# or two spaces and the description.
OPTION_LINE = re.compile(r"^  (-[^\s]+)(?: ([A-Z][A-Z0-9_]*(?:[:=]\S*)?)(?:\s|$))?")
SUBCOMMAND_LINE = re.compile(r"^  ([a-z][a-z0-9-]*)\s")


def help_text(zen, *arguments):
    done = subprocess.run([zen, *arguments, "--help"], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def section(text, title):
    """The lines of one section of a help text ("Options:", "Subcommands:")."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.rstrip() == title:
            inside = True
        elif inside and line and not line.startswith(" "):
            break
        elif inside:
            lines.append(line)
    return lines


def parse_options(text):
    """[(names, kind, choices)]: kind is None for a flag, 'file', 'user' or 'value'."""
    options = []
    for line in section(text, "Options:"):
        match = OPTION_LINE.match(line)
        if not match:
            continue
        names = match.group(1).split(",")
        value_type = match.group(2)
        choices = []
        kind = None
        if value_type:
            kind = "value"
            type_name = value_type.split("=", 1)[0]
            members = re.search(r"\{([^}]*)\}", type_name)
            if members:
                choices = members.group(1).split(",")
            elif "FILE" in type_name.split(":"):
                kind = "file"
            elif "--user" in names:
                kind = "user"
        options.append((names, kind, choices))
    return options


def shell_name(subcommand, option):
    return f"{subcommand}_{option.replace('-', '_')}"


def main():
    zen, template_path, output_path = sys.argv[1:4]
    top = help_text(zen)
    subcommands = [m.group(1) for line in section(top, "Subcommands:") if (m := SUBCOMMAND_LINE.match(line))]
    if not subcommands:
        sys.exit("gen_completion.py: no subcommands in `zen --help`")
    top_options = [name for names, _, _ in parse_options(top) for name in names]

    tables = [f'_zen_subcommands="{" ".join(subcommands)}"', f'_zen_top_options="{" ".join(top_options)}"']
    for subcommand in subcommands:
        options = parse_options(help_text(zen, subcommand))
        if not options:
            sys.exit(f"gen_completion.py: no options in `zen {subcommand} --help`")
        all_names = [name for names, _, _ in options for name in names]
        tables.append(f'_zen_options_{subcommand.replace("-", "_")}="{" ".join(all_names)}"')
        for names, kind, choices in options:
            for name in names:
                if choices:
                    tables.append(f'_zen_choices_{shell_name(subcommand, name)}="{" ".join(choices)}"')
                elif kind:
                    tables.append(f"_zen_value_{shell_name(subcommand, name)}={kind}")

    with open(template_path) as f:
        template = f.read()
    if "@ZEN_COMPLETION_TABLES@" not in template:
        sys.exit("gen_completion.py: the template has no @ZEN_COMPLETION_TABLES@")
    os.makedirs(os.path.dirname(output_path), exist_ok=True)
    with open(output_path, "w") as f:
        f.write(template.replace("@ZEN_COMPLETION_TABLES@", "\n".join(tables)))


if __name__ == "__main__":
    main()
