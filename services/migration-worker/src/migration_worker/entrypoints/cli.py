import typer

app = typer.Typer(help="OneClass migration engine")
