#!/bin/sh
# openwrt-render.sh INIT_SCRIPT UCI_FILE: runs the procd init script's
# start_service under busybox ash with stand-ins for OpenWrt's
# /lib/functions.sh (UCI) and /lib/functions/procd.sh, and prints each instance
# procd would start: "instance NAME", one "arg VALUE" line per command word,
# "respawn A B C", then "end". Same storage model as functions.sh
# (CONFIG_<section>_<option>, lists as _ITEMn / _LENGTH).
set -e
INIT=$1
UCI=$2

config_load() {
	eval "$(awk -v q="'" '
		function val(s) {
			sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s)
			if (s ~ /^'\''.*'\''$/ || s ~ /^".*"$/) s = substr(s, 2, length(s) - 2)
			gsub(q, q "\\" q q, s)
			return q s q
		}
		/^[ \t]*(#|$)/ { next }
		$1 == "config" {
			n++; sec = (NF >= 3) ? $3 : ("cfg" n); gsub(/['\''"]/, "", sec)
			print "CONFIG_SECTIONS=\"$CONFIG_SECTIONS " sec "\"; CONFIG_" sec "_TYPE=" $2
			next
		}
		$1 == "option" { k = $2; $1 = ""; $2 = ""; print "CONFIG_" sec "_" k "=" val($0); next }
		$1 == "list" {
			k = $2; $1 = ""; $2 = ""; c[sec "_" k]++
			print "CONFIG_" sec "_" k "_ITEM" c[sec "_" k] "=" val($0) "; CONFIG_" sec "_" k "_LENGTH=" c[sec "_" k]
			next
		}
		{ print "echo \"uci: bad line: " NR "\" >&2; exit 1" }
	' "$UCI")"
}

config_get() {
	# config_get VAR SECTION OPTION [DEFAULT]
	local _v
	eval "_v=\${CONFIG_$2_$3-}"
	[ -n "$_v" ] || _v="${4-}"
	eval "$1=\$_v"
}

config_get_bool() {
	local _b
	config_get _b "$2" "$3" "${4-0}"
	case "$_b" in
		1|on|true|yes|enabled) _b=1 ;;
		*) _b=0 ;;
	esac
	eval "$1=$_b"
}

config_foreach() {
	local fn=$1 type=$2 s t
	shift 2
	for s in $CONFIG_SECTIONS; do
		eval "t=\$CONFIG_${s}_TYPE"
		[ "$t" = "$type" ] && "$fn" "$s" "$@"
	done
	return 0
}

config_list_foreach() {
	local s=$1 o=$2 fn=$3 n i v
	shift 3
	eval "n=\${CONFIG_${s}_${o}_LENGTH:-0}"
	i=1
	while [ "$i" -le "$n" ]; do
		eval "v=\$CONFIG_${s}_${o}_ITEM$i"
		"$fn" "$v" "$@"
		i=$((i + 1))
	done
}

procd_open_instance() { echo "instance ${1-}"; }
procd_close_instance() { echo "end"; }
procd_set_param() {
	local k=$1
	shift
	case "$k" in
		command) for a in "$@"; do echo "arg $a"; done ;;
		respawn) echo "respawn $*" ;;
		*) echo "param $k $*" ;;
	esac
}
procd_append_param() {
	local k=$1
	shift
	[ "$k" = command ] || { echo "append $k $*"; return; }
	for a in "$@"; do echo "arg $a"; done
}
procd_send_signal() { echo "signal $*"; }
procd_add_reload_trigger() { :; }

. "$INIT"
start_service
