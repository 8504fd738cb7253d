# Shared by ./run and ./test: make .venv and install the project into it when pyproject.toml
# changed since the last install (a stamp file remembers), so repeated runs start fast. What pip
# says goes to .venv/install.log; the terminal gets one line, and pip's last lines on failure.
ensure_venv() {
    extras="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    stamp=".venv/.installed$extras"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        printf 'installing tui-migrator%s into .venv (details: .venv/install.log)…' "$extras" >&2
        if .venv/bin/python -m pip install --quiet --upgrade pip >.venv/install.log 2>&1 &&
            .venv/bin/python -m pip install --quiet -e ".$extras" >>.venv/install.log 2>&1; then
            echo " done" >&2
        else
            echo " FAILED; the end of .venv/install.log:" >&2
            tail -n 30 .venv/install.log >&2
            return 1
        fi
        touch "$stamp"
    fi
}
