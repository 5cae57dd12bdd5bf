"""Many sandboxes at once, and the asyncio API over the same core."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from openale.sandbox import AnyAsyncSandbox, AnySandbox, AsyncSandbox, Sandbox, SandboxSpec
from tests.conftest import BASE_IMAGE


@pytest.mark.slow
def test_16_sandboxes_by_50_commands_lose_and_mix_nothing(engine):
    spec = SandboxSpec(image=BASE_IMAGE, memory="128m", cpus=0.25)

    def work(i: int) -> list[str]:
        errors = []
        with Sandbox.create(spec) as sb:
            shell = sb.sessions.create()
            shell.run(f"export ME=sb{i}")
            for j in range(50):
                if j % 2:
                    r = shell.run(f"echo $ME-{j}; echo err-{j} >&2; (exit {j % 7})")
                    expected = f"sb{i}-{j}\nerr-{j}\n"
                    got = r.output
                else:
                    r = sb.commands.run(f"echo sb{i}-{j}; (exit {j % 7})")
                    expected, got = f"sb{i}-{j}\n", r.stdout
                if got != expected or r.exit_code != j % 7:
                    errors.append(f"sb{i} cmd{j}: {got!r} exit {r.exit_code}")
        return errors

    with ThreadPoolExecutor(16) as pool:
        problems = [e for errs in pool.map(work, range(16)) for e in errs]
    assert problems == []


async def test_async_api_mirrors_the_sync_one(engine):
    async def one(i: int) -> tuple[str, str, bytes, int]:
        async with await AsyncSandbox.create(SandboxSpec(image=BASE_IMAGE)) as sb:
            assert isinstance(sb, AnyAsyncSandbox) and not isinstance(sb, AnySandbox)
            shell = await sb.sessions.create()
            await shell.run(f"cd /tmp && N={i}")
            out = (await shell.run("echo $N $(pwd)")).output
            await sb.files.write("n.txt", str(i))
            data = await sb.files.read("n.txt")
            handle = await sb.commands.run("sleep 0.2; exit 4", background=True)
            code = (await handle.wait(timeout=30)).exit_code
            return sb.id, out, data, code

    results = await asyncio.gather(*(one(i) for i in range(3)))
    assert len({r[0] for r in results}) == 3
    for i, (_, out, data, code) in enumerate(results):
        assert (out, data, code) == (f"{i} /tmp\n", str(i).encode(), 4)
    assert not {r[0] for r in results} & {i.id for i in await AsyncSandbox.list()}


async def test_async_snapshot_and_fork(engine):
    sb = await AsyncSandbox.create(image=BASE_IMAGE)
    try:
        await sb.files.write("x.txt", "snap")
        snap = await sb.snapshot()
        forks = await AsyncSandbox.fork(snap, 2)
        for f in forks:
            assert await f.files.read("x.txt") == b"snap"
            await f.close()
    finally:
        await sb.close()
        engine.images.remove(snap.image, force=True)
