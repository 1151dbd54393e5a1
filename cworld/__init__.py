"""C worlds: the real `drivers/iommu/io-pgtable-arm.c` of a kernel tree, built in userspace.

A C world is a userspace build of a kernel tree's unmodified io-pgtable-arm.c (optionally with
patches applied) against this project's shim headers, loaded with ctypes and presented to the
executor and oracles through the same inspection API as the Python model's `World`.

    source   find a kernel tree, or fetch Debian's linux-source-6.12 into the cache
    patches  apply patches (also quoted in a mail) to a private copy of the files
    build    compile the shared library, cached by a hash of everything that goes in
    world    `CWorld`: the library behind the model's World interface
"""
