from fastapi import APIRouter

from orders.entrypoints.http.routes import admin, catalogue, orders, quotes, tasks

BASE = "/api/v1/migration-services"

ROUTERS: list[APIRouter] = [catalogue.router, quotes.router, orders.router, tasks.router, admin.router]
