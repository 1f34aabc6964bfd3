"""Job ids made by the clients."""

from __future__ import annotations

import uuid

from jobwire.keys import check_job_id, new_job_id


def test_a_new_job_id_is_a_random_version_4_uuid_in_hex() -> None:
    ids = [new_job_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for job_id in ids[:1000]:
        parsed = uuid.UUID(hex=job_id)
        assert parsed.hex == job_id and len(job_id) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert check_job_id(job_id) == job_id
