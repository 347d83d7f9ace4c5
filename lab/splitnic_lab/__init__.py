"""The lab: network namespaces, peers and traffic around a NIC, for the demo, the tests and the benches.

Ref: docs/architecture.md, "Layers".

* :mod:`.netns` -- namespaces and shell commands;
* :mod:`.veth_lab` -- a veth peer and a user-space bridge (:mod:`.bridge`) for the kernel-path tests;
* :mod:`.sim_lab` -- the simulated RTL NIC wired to a peer namespace, snic0 in a host namespace;
* :mod:`.impair` -- a seeded impairment relay (loss, duplication, reordering, scripted drops) between
  two veths, for the ``eth`` host link's fault tests and its ``loss.*`` benchmark;
* :mod:`.demo` and :mod:`.command` -- ``splitnic demo`` (``make demo``).

It stands on the driver and the simulator; the driver does not need it.
"""
