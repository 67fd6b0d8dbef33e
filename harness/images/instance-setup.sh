# Runs inside the bootstrapped root file system of an instance image (chroot).
set -e
# A container has no consoles, udev or kernel mounts to manage: masking these
# units keeps boot fast and `systemctl is-system-running` clean.
for unit in getty.target console-getty.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-modules-load.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    dev-hugepages.mount systemd-remount-fs.service systemd-firstboot.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
# A container gets /proc/sys read-only; a VM does not, and the inner Docker
# engine writes per-container sysctls there (Docker 26 disables IPv6 on each
# container's eth0). Remount it read-write first thing at boot.
cat > /etc/systemd/system/proc-sys-rw.service <<'UNIT'
[Unit]
Description=Make /proc/sys writable, as on a VM
DefaultDependencies=no
Before=sysinit.target systemd-sysctl.service

[Service]
Type=oneshot
ExecStart=/bin/mount -o remount,rw /proc/sys

[Install]
WantedBy=sysinit.target
UNIT
mkdir -p /etc/systemd/system/sysinit.target.wants
ln -sf /etc/systemd/system/proc-sys-rw.service /etc/systemd/system/sysinit.target.wants/
# Every instance gets its own machine id at boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/*
# No package lists ship in the image: date the lists directory in the past so
# apt's cache_valid_time sees a stale cache and the first run refreshes it.
rm -f /var/lib/apt/periodic/update-success-stamp
touch -d @0 /var/lib/apt/lists
