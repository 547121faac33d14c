"""streamtrt on a Ray cluster (issue 17): stream workers with failover, a controller, batch mode.

Ray is optional (``pip install 'streamtrt[cluster]'``); nothing here imports it at module level
except :mod:`~streamtrt.cluster.controller`/:mod:`~streamtrt.cluster.driver` calls that need it.
"""
