# bash completion for udfhost: subcommands, each subcommand's options, plugin names after
# --plugin, a plugin's parameter names after -p, and files elsewhere.
#
# Subcommands and options are read from `udfhost --help` and `udfhost COMMAND --help`, plugin
# names from `udfhost list-plugins`, parameter names from `udfhost plugin-info NAME`, all run
# with the udfhost being completed (the command word as typed), so the completion stays true to
# that binary. Help texts are cached per binary for the shell session; plugin lists are not
# (UDFHOST_PLUGIN_PATH may change).
#
# Install as $(datadir)/bash-completion/completions/udfhost, or source this file.

declare -gA _udfhost_help_cache 2>/dev/null || true

# Print the help text of "$1 $2 --help" (or "$1 --help" when $2 is empty), cached.
_udfhost_help()
{
    local key="$1|$2" text
    if [[ -n ${_udfhost_help_cache[$key]+set} ]]; then
        printf '%s\n' "${_udfhost_help_cache[$key]}"
        return
    fi
    if [[ -n $2 ]]; then
        text=$("$1" "$2" --help 2>/dev/null)
    else
        text=$("$1" --help 2>/dev/null)
    fi
    _udfhost_help_cache[$key]=$text
    printf '%s\n' "$text"
}

# The subcommands: the lines of the "Commands:" section of udfhost --help.
_udfhost_commands()
{
    _udfhost_help "$1" "" | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
                                 on && /^  [a-z]/ { print $1 }'
}

# Options of a subcommand: "-x --long" words in $1's help. With $3 = args, only the ones that take
# an argument (an upper-case placeholder after the long name: --threads N, --roi FILE.npy).
_udfhost_options()
{
    local line re='^ +(-([[:alnum:]]), )? *--([[:alnum:]-]+)( ([A-Z][^[:space:]]*))?'
    while IFS= read -r line; do
        [[ $line =~ $re ]] || continue
        if [[ $3 == args && -z ${BASH_REMATCH[5]} ]]; then
            continue
        fi
        [[ -n ${BASH_REMATCH[2]} ]] && printf '%s\n' "-${BASH_REMATCH[2]}"
        printf '%s\n' "--${BASH_REMATCH[3]}"
    done < <(_udfhost_help "$1" "$2")
}

# Plugin names udfhost finds (loadable ones only).
_udfhost_plugins()
{
    "$1" list-plugins 2>/dev/null | awk '$3 != "unloadable:" { print $1 }'
}

# Parameter names of plugin $2 (a name or a path), from its plugin-info.
_udfhost_params()
{
    "$1" plugin-info "$2" 2>/dev/null |
        awk '/^parameters:/ { on = 1; next } /^buffers:/ { exit }
             on && /^  [a-z0-9_]+ \(/ { print $1 }'
}

# The plugin -p refers to: the last --plugin before the cursor; for plugin-info and check-plugin
# the positional argument.
_udfhost_current_plugin()
{
    local cmd=$1 i w found= argopts
    argopts=" $(_udfhost_options "$2" "$cmd" args | tr '\n' ' ') "
    for ((i = 2; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == --plugin ]]; then
            found=${COMP_WORDS[i + 1]}
            ((i++))
        elif [[ $w == --plugin=* ]]; then
            found=${w#--plugin=}
        elif [[ $argopts == *" $w "* ]]; then
            ((i++))
        elif [[ ($cmd == plugin-info || $cmd == check-plugin) && $w != -* && -z $found ]]; then
            found=$w
        fi
    done
    printf '%s\n' "$found"
}

_udfhost()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local bin=${COMP_WORDS[0]} cmd=${COMP_WORDS[1]} plugin
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        COMPREPLY=($(compgen -W "$(_udfhost_commands "$bin") -h --help -V --version" -- "$cur"))
        return
    fi
    case $prev in
    --plugin)
        if [[ $cur == */* || $cur == .* || $cur == \~* ]]; then
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_udfhost_plugins "$bin")" -- "$cur"))
        fi
        return
        ;;
    -p | --param)
        plugin=$(_udfhost_current_plugin "$cmd" "$bin")
        if [[ -n $plugin ]]; then
            compopt -o nospace 2>/dev/null
            COMPREPLY=($(compgen -S = -W "$(_udfhost_params "$bin" "$plugin")" -- "$cur"))
        fi
        return
        ;;
    --format)
        COMPREPLY=($(compgen -W "raw npy tiff mrc mib hdf5" -- "$cur"))
        return
        ;;
    --dtype)
        COMPREPLY=($(compgen -W "uint8 uint16 uint32 int8 int16 int32 float32 float64" -- "$cur"))
        return
        ;;
    --byte-order)
        COMPREPLY=($(compgen -W "little big" -- "$cur"))
        return
        ;;
    -o | --output)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -d -- "$cur"))
        return
        ;;
    esac
    if [[ " $(_udfhost_options "$bin" "$cmd" args | tr '\n' ' ') " == *" $prev "* ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_udfhost_options "$bin" "$cmd")" -- "$cur"))
        return
    fi
    if [[ ($cmd == plugin-info || $cmd == check-plugin) && $cur != */* && $cur != .* ]]; then
        COMPREPLY=($(compgen -W "$(_udfhost_plugins "$bin")" -- "$cur"))
        return
    fi
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
}

complete -F _udfhost udfhost
