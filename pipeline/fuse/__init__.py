"""Fusion mapped over spatial blocks x time windows on Dask, written into the store.

``plan`` (pure: blocks, halos, reference pairs) -> ``stream`` (spatial groups
of tasks and the source chunks each holds on the cluster, bounded by a budget)
-> ``dispatch`` (open groups, submit input / model / write tasks) -> ``worker``
(model cache, window cuts, fusion and region write on the worker);
``engine.fuse_into_store`` ties them to a store; ``cluster.open_client``
gives the LocalCluster or remote client. The model it maps is trained, selected or
loaded by the stage below (:mod:`pipeline.train`). torch is imported only via models.
"""
