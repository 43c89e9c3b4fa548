"""``{% question_panel template_name panel_context %}``: render a panel registered through
forecasting/views/panels.py, like ``{% include %}`` but with the panel's own context (a dict) added."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def question_panel(context: template.Context, template_name: str, panel_context: dict) -> str:
    panel_template = context.template.engine.get_template(template_name)
    with context.push(panel_context):
        return panel_template.render(context)
