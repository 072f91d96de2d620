"""Route dependencies: the service's components, reached through the app built by bootstrap.

`async def` although nothing is awaited: FastAPI runs a plain `def` dependency in a worker thread.
"""

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from notifications.bootstrap import Components


async def get_components(request: Request) -> "Components":
    components: Components = request.app.state.components
    return components


ComponentsDep = Annotated["Components", Depends(get_components)]
