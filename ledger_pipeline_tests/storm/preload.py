"""What the storm's fork server imports before it forks any child (killer.Launcher): the child's module, whose
import builds the sync job, and Dagster's instance storage, set up once.

A process's first Dagster instance costs about a second (the storage's imports, which its later instances
reuse); each child opens its project's instance once per sync, so every restart paid that again. Paid
here, in the fork server, it is inherited by every child. The children still open their own project's
instance from its settings and run the same job: nothing a child does changes, only what it imports.
"""

from __future__ import annotations

import dagster as dg

from ledger_pipeline_tests.storm import child  # noqa: F401 - builds the default sync job (its module's last line)


def set_up_instance_storage() -> None:
    """Make and drop an in-memory instance: it imports the SQL storage a child's on-disk instance then finds loaded
    (its `from_config` down from a second to a tenth of one)."""
    with dg.DagsterInstance.ephemeral():
        pass


set_up_instance_storage()
