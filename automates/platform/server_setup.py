"""`python -m automates.platform.server_setup`: Prefect's database made ready once, before the
highly available profile's API processes start (ha.py).

Each Prefect API process migrates the database and registers the block types when it starts.
Several starting at once race: two inserts of one block type, one fails, and its uvicorn
worker (and with it the API) exits. So `up` does both here, in one process, and the API
processes start with both turned off.
"""

from __future__ import annotations

import asyncio

from automates.server.prefect_patches import apply_server


async def prepare() -> None:
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    database = provide_database_interface()
    await database.create_db()  # Prefect's migrations, to head
    session = await database.session()
    async with session:
        await run_block_auto_registration(session=session)


if __name__ == "__main__":
    apply_server()
    asyncio.run(prepare())
