-- Reverts 0006: drops dashboard_widgets and dashboards (with policies, triggers, indexes) and the widget_type type.

drop table public.dashboard_widgets;
drop table public.dashboards;

drop type public.widget_type;
