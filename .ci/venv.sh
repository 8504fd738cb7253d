# Shared by ./run and ./test: make .venv and install the project into it when pyproject.toml
# changed since the last install (a stamp file remembers), so repeated runs start fast.
ensure_venv() {
    extras="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    stamp=".venv/.installed$extras"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".$extras"
        touch "$stamp"
    fi
}
