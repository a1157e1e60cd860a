"""The jobs: each wires a Deribit source (``collector.deribit``) to the store (``collector.store``), one
module per systemd unit (``ws`` with its collaborators ``ws_continuity``, ``ws_lifecycle``, ``ws_health``;
``rest``, ``depth``, ``greeks``, ``funding`` on ``restjob``'s pass), plus ``runall`` (every job in one
process), ``replay``, ``dbadmin`` and ``localrun``. Jobs hold the wiring and the policy, no field logic.
"""
