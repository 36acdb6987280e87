"""Build tooling: dependency locks, the build manifest, the kernel and initramfs, the QEMU runner.

Everything here runs on the build host, never inside the appliance.
"""
