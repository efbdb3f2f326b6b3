// Plugin docks and their widgets (the C API's backends), their placement,
// and the queries scripts (--click) and tests use to drive them.
#include "viewer_window.h"
#include "plot_widget.h"

#include <QApplication>
#include <QDockWidget>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QStatusBar>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>
#include <functional>

namespace {

// Sees a plugin dock's close event (its title bar's close button): that
// closes the plugin. The View menu only hides and shows docks (no close).
class CloseWatch : public QObject {
public:
    CloseWatch(QObject *parent, std::function<void()> f) : QObject(parent), f_(std::move(f)) {}
    bool eventFilter(QObject *, QEvent *e) override {
        if (e->type() == QEvent::Close) f_();
        return false;  // and the dock hides, as usual
    }

private:
    std::function<void()> f_;
};

constexpr int kButtonsPerRow = 2;  // consecutive buttons share a row: compact docks
constexpr int kPluginCloseMs = 1000;  // a plugin's workers that ignore quit are abandoned then

// The column of widgets inside a plugin dock (see add_dock).
QVBoxLayout *dock_column(QWidget *dock) {
    auto *scroll = static_cast<QScrollArea *>(static_cast<QDockWidget *>(dock)->widget());
    return static_cast<QVBoxLayout *>(scroll->widget()->layout());
}

}  // namespace

// -------------------------------------------------------------------- docks

Viewer::Item *Viewer::item(int id, Kind kind) {
    auto it = items_.find(id);
    if (it == items_.end() || !it->second.widget) return nullptr;
    return it->second.kind == kind ? &it->second : nullptr;
}

int Viewer::add_dock(const char *title, void *ud, viewer_destroy_fn destroy) {
    if (!title || !*title) {
        if (destroy) destroy(ud);
        return VIEWER_EINVAL;
    }
    QString t = QString::fromUtf8(title);
    auto *dock = new QDockWidget(t, this);
    dock->setObjectName("plugin:" + t);
    auto *body = new QWidget;
    auto *lay = new QVBoxLayout(body);
    lay->addStretch(1);  // widgets are inserted above it
    // In a scroll area: a tall dock scrolls instead of stretching the window.
    auto *scroll = new QScrollArea;
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    scroll->setWidget(body);
    dock->setWidget(scroll);
    if (last_plugin_dock_)
        splitDockWidget(last_plugin_dock_, dock, Qt::Vertical);
    else
        addDockWidget(Qt::RightDockWidgetArea, dock);
    last_plugin_dock_ = dock;
    if (!arrange_pending_) {  // once the plugin being loaded has filled its dock
        arrange_pending_ = true;
        QTimer::singleShot(0, this, [this] { arrange_docks(); });
    }
    int id = next_item_++;
    items_[id] = Item{Kind::Dock, id, t, dock, ud, destroy, current_plugin_};
    if (current_plugin_ < 0) {
        view_menu_->addAction(dock->toggleViewAction());
        return id;
    }
    QAction *show = view_menu_->addAction(t);  // hide() sends no close event
    show->setCheckable(true);
    show->setChecked(true);
    connect(show, &QAction::toggled, dock, &QWidget::setVisible);
    connect(dock, &QDockWidget::visibilityChanged, show, [show, dock] { show->setChecked(!dock->isHidden()); });
    connect(dock, &QObject::destroyed, show, &QObject::deleteLater);
    int plugin = current_plugin_;
    dock->installEventFilter(new CloseWatch(dock, [this, plugin] { close_plugin_at(plugin); }));
    return id;
}

// --------------------------------------------------------- closing a plugin

worker_scope *Viewer::dock_scope(int dock) {
    Item *d = item(dock, Kind::Dock);
    return d && d->plugin >= 0 ? plugins_[(size_t)d->plugin].scope : nullptr;
}

bool Viewer::close_plugin(const QString &name) {
    for (size_t i = 0; i < plugins_.size(); i++)
        if (plugins_[i].name == name && plugins_[i].scope) {
            close_plugin_at((int)i);
            return true;
        }
    return false;
}

// No callback of the plugin's workers begins after worker_scope_close
// returns (one running below us on this stack returns first), so what the
// plugin's callbacks use can go at once: connections, then docks.
void Viewer::close_plugin_at(int index) {
    Plugin &p = plugins_[(size_t)index];
    if (!p.scope || tearing_down_) return;
    worker_scope *scope = p.scope;
    p.scope = nullptr;
    int rc = worker_scope_close(scope, kPluginCloseMs);
    if (p.close_action) p.close_action->deleteLater();  // it may be what is running
    p.close_action = nullptr;
    std::vector<int> docks;
    for (auto &kv : items_)
        if (kv.second.kind == Kind::Dock && kv.second.plugin == index) docks.push_back(kv.first);
    for (int d : docks) drop_dock(d);
    log(rc == WORKER_OK ? QString("plugin %1: closed").arg(p.name)
                        : QString("plugin %1: closed, its workers abandoned (still running)").arg(p.name),
        rc == WORKER_OK ? LogDock::Kind::Event : LogDock::Kind::Warning);
}

// Destroys a dock's connections and user_data now; the widgets go once the
// event that closed it (maybe the dock's own close event) has returned.
void Viewer::drop_dock(int dock) {
    std::vector<long> gone;
    for (auto &kv : conns_)
        if (items_[kv.second.widget].dock == dock) gone.push_back(kv.first);
    for (long id : gone) disconnect_widget(conns_[id].widget, id);
    Item d = items_[dock];
    for (auto it = items_.begin(); it != items_.end();)
        it = it->second.dock == dock ? items_.erase(it) : std::next(it);
    button_row_.erase(dock);
    if (last_plugin_dock_ == d.widget) last_plugin_dock_ = nullptr;
    if (d.widget) d.widget->deleteLater();
    if (d.destroy) d.destroy(d.ud);
}

// Plugin docks fill the right column, in creation order, while they fit;
// the rest go under the Layers dock while they fit there, and then become
// tabs of the last one placed there (so the window keeps its size). Each
// keeps the room its widgets want now (later growth scrolls).
void Viewer::arrange_docks() {
    arrange_pending_ = false;
    // A fifth to spare: labels grow as plugins write to them.
    int room = (height() - menuBar()->height() - statusBar()->height()) * 4 / 5, used = 0;
    int left_used = layers_dock_->sizeHint().height();
    QDockWidget *right = nullptr, *left = layers_dock_;
    for (auto &kv : items_) {
        auto *d = kv.second.kind == Kind::Dock ? qobject_cast<QDockWidget *>(kv.second.widget) : nullptr;
        if (!d) continue;
        auto *scroll = static_cast<QScrollArea *>(d->widget());
        QSize want = scroll->widget()->sizeHint();
        scroll->setMinimumSize(std::max(200, want.width() + scroll->verticalScrollBar()->sizeHint().width()),
                               want.height());
        int h = d->sizeHint().height();
        if (!right || (left == layers_dock_ && used + h <= room)) {
            if (right) splitDockWidget(right, d, Qt::Vertical);
            else addDockWidget(Qt::RightDockWidgetArea, d);
            right = d;
            used += h + 6;  // + the separator
        } else if (left == layers_dock_ || left_used + h <= room) {
            splitDockWidget(left, d, Qt::Vertical);
            left = d;
            left_used += h + 6;
        } else {
            tabifyDockWidget(left, d);  // no room in either column
        }
    }
    last_plugin_dock_ = right;
}

int Viewer::add_widget(int dock, Kind kind, const char *text) {
    Item *d = item(dock, Kind::Dock);
    if (!d || !text) return VIEWER_EINVAL;
    QString t = QString::fromUtf8(text);
    QWidget *w;
    if (kind == Kind::Button) {
        w = new QPushButton(t);
    } else if (kind == Kind::Label) {
        auto *l = new QLabel(t);
        l->setWordWrap(true);
        w = l;
    } else if (kind == Kind::Plot) {
        w = new PlotWidget(t);
    } else {
        auto *e = new QLineEdit;
        e->setPlaceholderText(t);
        w = e;
    }
    w->setObjectName(t);
    QVBoxLayout *lay = dock_column(d->widget);
    QHBoxLayout *&row = button_row_[dock];
    if (kind != Kind::Button) {
        row = nullptr;
        lay->insertWidget(lay->count() - 1, w);
    } else {
        if (!row || row->count() >= kButtonsPerRow) {
            row = new QHBoxLayout;
            lay->insertLayout(lay->count() - 1, row);
        }
        row->addWidget(w);
    }
    int id = next_item_++;
    items_[id] = Item{kind, dock, t, w, nullptr, nullptr};
    return id;
}

long Viewer::connect_widget(int widget, viewer_callback cb, void *ud, viewer_destroy_fn destroy) {
    auto it = items_.find(widget);
    int rc = VIEWER_OK;
    if (it == items_.end() || !it->second.widget || !cb)
        rc = VIEWER_EINVAL;
    else if (it->second.kind != Kind::Button && it->second.kind != Kind::LineEdit)
        rc = VIEWER_ESTATE;
    if (rc != VIEWER_OK) {
        if (destroy) destroy(ud);
        return rc;
    }
    long id = next_conn_++;
    Conn c{widget, cb, ud, destroy, {}};
    QWidget *w = it->second.widget;
    if (auto *b = qobject_cast<QPushButton *>(w))
        c.qt = connect(b, &QPushButton::clicked, this, [this, id] { fire(id); });
    else
        c.qt = connect(static_cast<QLineEdit *>(w), &QLineEdit::returnPressed, this,
                       [this, id] { fire(id); });
    conns_[id] = c;
    return id;
}

void Viewer::fire(long id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn c = it->second;  // the callback may disconnect itself
    QWidget *w = items_[c.widget].widget;
    QString text;
    if (auto *b = qobject_cast<QPushButton *>(w)) text = b->text();
    if (auto *e = qobject_cast<QLineEdit *>(w)) text = e->text();
    QByteArray utf8 = text.toUtf8();
    int caller = current_plugin_;  // workers it creates go in its plugin's scope
    current_plugin_ = items_[items_[c.widget].dock].plugin;
    c.cb(handle_, c.widget, utf8.constData(), c.ud);
    current_plugin_ = caller;
}

int Viewer::disconnect_widget(int widget, long id) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.widget != widget) return VIEWER_EINVAL;
    Conn c = it->second;
    QObject::disconnect(c.qt);
    conns_.erase(it);
    if (c.destroy) c.destroy(c.ud);
    return VIEWER_OK;
}

int Viewer::set_enabled(int widget, bool enabled) {
    auto it = items_.find(widget);
    if (it == items_.end() || !it->second.widget) return VIEWER_EINVAL;
    QWidget *w = it->second.widget;
    if (auto *d = qobject_cast<QDockWidget *>(w)) w = d->widget();
    w->setEnabled(enabled);
    return VIEWER_OK;
}

int Viewer::set_text(int widget, const char *text) {
    auto it = items_.find(widget);
    if (it == items_.end() || !it->second.widget || !text) return VIEWER_EINVAL;
    QString t = QString::fromUtf8(text);
    QWidget *w = it->second.widget;
    if (auto *b = qobject_cast<QPushButton *>(w)) b->setText(t);
    else if (auto *l = qobject_cast<QLabel *>(w)) l->setText(t);
    else if (auto *e = qobject_cast<QLineEdit *>(w)) e->setText(t);
    else if (auto *pl = dynamic_cast<PlotWidget *>(w)) {
        pl->setWindowTitle(t);  // drawn as its caption
        pl->update();
    } else w->setWindowTitle(t);  // a dock
    return VIEWER_OK;
}

int Viewer::set_plot(int widget, const float *y, int n) {
    auto it = items_.find(widget);
    if (it == items_.end() || !it->second.widget || (!y && n) || n < 0) return VIEWER_EINVAL;
    auto *plot = dynamic_cast<PlotWidget *>(it->second.widget.data());
    if (!plot) return VIEWER_ESTATE;
    plot->set_curve(y, n);
    return VIEWER_OK;
}

// ------------------------------------------------------ scripts and tests

const Viewer::Item *Viewer::item_named(const QString &dock, const QString &name) const {
    for (auto &kv : items_) {
        const Item &i = kv.second;
        if (i.kind == Kind::Dock || i.name != name || !i.widget) continue;
        auto d = items_.find(i.dock);
        if (d != items_.end() && d->second.name == dock) return &i;
    }
    return nullptr;
}

QWidget *Viewer::find_widget(const QString &dock, const QString &name) const {
    const Item *i = item_named(dock, name);
    return i ? i->widget.data() : nullptr;
}

bool Viewer::click(const QString &dock, const QString &button) {
    auto *b = qobject_cast<QPushButton *>(find_widget(dock, button));
    if (!b || !b->isEnabled()) return false;
    if (auto *d = findChild<QDockWidget *>("plugin:" + dock)) d->raise();  // a tab comes to the front
    b->click();
    return true;
}

bool Viewer::submit(const QString &dock, const QString &edit, const QString &text) {
    auto *e = qobject_cast<QLineEdit *>(find_widget(dock, edit));
    if (!e || !e->isEnabled()) return false;
    e->setText(text);
    // A real Return key press: the same path as a user's.
    QKeyEvent press(QEvent::KeyPress, Qt::Key_Return, Qt::NoModifier);
    QApplication::sendEvent(e, &press);
    return true;
}

QString Viewer::text_of(const QString &dock, const QString &name) const {
    QWidget *w = find_widget(dock, name);
    if (auto *b = qobject_cast<QPushButton *>(w)) return b->text();
    if (auto *l = qobject_cast<QLabel *>(w)) return l->text();
    if (auto *e = qobject_cast<QLineEdit *>(w)) return e->text();
    if (w) return w->windowTitle();  // a plot's caption
    return QString();
}

int Viewer::connection_count(const QString &dock, const QString &name) const {
    const Item *i = item_named(dock, name);
    int n = 0;
    for (auto &kv : conns_)
        if (i && items_.at(kv.second.widget).widget == i->widget) n++;
    return n;
}

bool Viewer::save_screenshot(const QString &file, double scale) {
    QImage img = grab().toImage();
    if (scale > 0 && scale != 1.0)
        img = img.scaled(img.size() * scale, Qt::KeepAspectRatio, Qt::SmoothTransformation);
    return img.save(file);
}
