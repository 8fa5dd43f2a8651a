# make_busybox_rootfs DIR: a minimal root filesystem from Debian's busybox-static:
# /bin/busybox, one symlink per applet, /etc/passwd and /etc/group, /root, /tmp.
make_busybox_rootfs() {
    local dir=$1
    mkdir -p "$dir"/{bin,etc,root,tmp}
    chmod 1777 "$dir/tmp"
    cp /bin/busybox "$dir/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list-full); do
        mkdir -p "$dir/$(dirname "$applet")"
        [ -e "$dir/$applet" ] || ln -s /bin/busybox "$dir/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
    printf 'root:x:0:\ntty:x:5:\n' >"$dir/etc/group"
}
