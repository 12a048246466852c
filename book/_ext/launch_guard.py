"""A Sphinx extension of the book: launch buttons (Colab, Binder) only when the book names its
repository (``repository.url`` in ``_config.yml``). Without one, sphinx-book-theme would fail
to build a button's link; with one, the buttons appear as configured."""


def drop_launch_buttons_without_a_repository(app, config):
    options = config.html_theme_options
    if not (options.get("repository_url") or "").strip():
        options.pop("launch_buttons", None)


def setup(app):
    app.connect("config-inited", drop_launch_buttons_without_a_repository)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
